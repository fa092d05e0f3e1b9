/*
 * The sandbox page: a local Slack channel for hitl-router.
 *
 * Everything shown comes from the stand-in's workspace (what the bot really did through
 * the Web API), pushed as snapshots over Server-Sent Events. Everything done here goes
 * back to the page API, which turns it into the signed payload Slack would send the bot.
 *
 * Safety: agent text is untrusted. Every node is built with createElement/textContent;
 * nothing is ever assigned to innerHTML, and links are only made for http(s)/mailto URLs.
 */
"use strict";

(() => {
  const API = "api/";
  const DEFAULT_CHANNEL = "C0APPROVALS";
  const BOT_NAME = "hitl-bot";

  const state = {
    snap: null,            // the latest snapshot for `me`
    me: null,              // the user id the page acts as
    place: { kind: "channel", id: DEFAULT_CHANNEL }, // or { kind: "app", tab: "home"|"messages" }
    thread: null,          // { channel, ts } of the open thread
    dismissed: new Set(),  // ephemeral keys the user dismissed
    lastSeen: {},          // channel id -> newest ts seen there (unread badges)
    viewErrors: {},        // view id -> { block_id: message }
    modalKey: null,        // "id:hash" of the modal on screen
    closing: null,         // id of a modal the user just closed (hidden before the server says so)
    homeKey: null,         // "id:hash:me" of the Home tab on screen
    notices: [],           // local "Only visible to you" notes from Slackbot
    shownReplies: new Set(), // ephemeral and notice keys already on screen once
    es: null,
    failures: 0,
  };

  // ------------------------------------------------------------------ DOM helpers

  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") el.className = value;
      else if (key === "text") el.textContent = value;
      else if (key === "dataset") Object.assign(el.dataset, value);
      else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
      else el.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      el.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return el;
  }

  const $ = (id) => document.getElementById(id);

  function clear(el) {
    while (el.firstChild) el.removeChild(el.firstChild);
  }

  // ------------------------------------------------------------------ API

  async function post(path, body) {
    const resp = await fetch(API + path, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-Sandbox": "1" },
      body: JSON.stringify({ as: state.me, ...body }),
    });
    let data = {};
    try {
      data = await resp.json();
    } catch (err) {
      data = { ok: false, error: `HTTP ${resp.status}` };
    }
    if (!resp.ok || data.ok === false) {
      notice(data.error || `The sandbox answered HTTP ${resp.status}.`);
    } else if (data.notice) {
      notice(data.notice);
    }
    return data;
  }

  // ------------------------------------------------------------------ text: emoji, entities

  const EMOJI = {
    white_check_mark: "✅", x: "❌", warning: "⚠️", rotating_light: "🚨", lock: "🔒",
    hourglass: "⌛", hourglass_flowing_sand: "⏳", stopwatch: "⏱️", no_entry_sign: "🚫",
    octagonal_sign: "🛑", dark_sunglasses: "🕶️", mega: "📣", information_source: "ℹ️",
    robot_face: "🤖", tada: "🎉", eyes: "👀", bar_chart: "📊", pencil2: "✏️", memo: "📝",
    large_green_circle: "🟢", large_yellow_circle: "🟡", large_orange_circle: "🟠",
    red_circle: "🔴", thumbsup: "👍", "+1": "👍", thumbsdown: "👎", wave: "👋",
    heavy_check_mark: "✔️", bell: "🔔", rocket: "🚀", email: "📧", moneybag: "💰",
  };

  function emojify(text) {
    return text.replace(/:([a-z0-9_+-]+):/g, (match, name) => EMOJI[name] || match);
  }

  // Slack escapes &, < and > in message text; show them as the characters they stand for.
  function decode(text) {
    return text.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
  }

  function plainText(obj) {
    if (!obj) return null;
    const text = String(obj.text || "");
    return h("span", { class: "plain" }, obj.emoji === false ? text : emojify(text));
  }

  function textObject(obj) {
    if (!obj) return null;
    return obj.type === "mrkdwn" ? mrkdwn(String(obj.text || "")) : plainText(obj);
  }

  // ------------------------------------------------------------------ dates (<!date^…>)

  const MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
    "September", "October", "November", "December"];
  const DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];

  function ordinal(n) {
    const s = n % 100;
    if (s >= 11 && s <= 13) return `${n}th`;
    return `${n}${{ 1: "st", 2: "nd", 3: "rd" }[n % 10] || "th"}`;
  }

  function dayOffset(d) {
    const today = new Date();
    const a = Date.UTC(d.getFullYear(), d.getMonth(), d.getDate());
    const b = Date.UTC(today.getFullYear(), today.getMonth(), today.getDate());
    return Math.round((a - b) / 86400000);
  }

  function relative(d) {
    const seconds = Math.round((d.getTime() - Date.now()) / 1000);
    const abs = Math.abs(seconds);
    const units = [["year", 31536000], ["month", 2592000], ["day", 86400], ["hour", 3600], ["minute", 60]];
    for (const [name, size] of units) {
      if (abs >= size) {
        const n = Math.floor(abs / size);
        const phrase = `${n} ${name}${n === 1 ? "" : "s"}`;
        return seconds < 0 ? `${phrase} ago` : `in ${phrase}`;
      }
    }
    return seconds < 0 ? "just now" : "in a moment";
  }

  function formatDate(epoch, format) {
    const d = new Date(epoch * 1000);
    const pad = (n) => String(n).padStart(2, "0");
    const long = () => `${DAYS[d.getDay()]}, ${MONTHS[d.getMonth()]} ${ordinal(d.getDate())}, ${d.getFullYear()}`;
    const full = () => `${MONTHS[d.getMonth()]} ${ordinal(d.getDate())}, ${d.getFullYear()}`;
    const short = () => `${MONTHS[d.getMonth()].slice(0, 3)} ${d.getDate()}, ${d.getFullYear()}`;
    const pretty = (atStart, otherwise) => {
      const word = { "-1": "yesterday", 0: "today", 1: "tomorrow" }[dayOffset(d)];
      if (!word) return otherwise();
      return atStart ? word[0].toUpperCase() + word.slice(1) : word;
    };
    return format.replace(/\{([a-z_]+)\}/g, (match, token, offset) => {
      const atStart = offset === 0;
      switch (token) {
        case "date_num": return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
        case "date_slash": return `${pad(d.getDate())}/${pad(d.getMonth() + 1)}/${d.getFullYear()}`;
        case "date": return full();
        case "date_short": return short();
        case "date_long": return long();
        case "date_long_full": return `${MONTHS[d.getMonth()]} ${d.getDate()}, ${d.getFullYear()}`;
        case "date_pretty": return pretty(atStart, full);
        case "date_short_pretty": return pretty(atStart, short);
        case "date_long_pretty": return pretty(atStart, long);
        case "day_divider_pretty": return pretty(atStart, long);
        case "time": return d.toLocaleTimeString([], { hour: "numeric", minute: "2-digit" });
        case "time_secs": return d.toLocaleTimeString([], { hour: "numeric", minute: "2-digit", second: "2-digit" });
        case "ago": return relative(d);
        default: return match;
      }
    });
  }

  // ------------------------------------------------------------------ mrkdwn

  const SAFE_URL = /^(https?:\/\/|mailto:)/i;

  function userName(id) {
    const user = state.snap && state.snap.users[id];
    return user ? user.name : null;
  }

  function angle(inner) {
    const bar = inner.indexOf("|");
    const target = bar >= 0 ? inner.slice(0, bar) : inner;
    const label = bar >= 0 ? inner.slice(bar + 1) : "";
    if (/^@[UW][A-Z0-9]+$/.test(target)) {
      const id = target.slice(1);
      const me = id === state.me;
      return h("span", { class: me ? "mention me" : "mention", title: id },
        `@${userName(id) || decode(label) || id}`);
    }
    if (/^#[CGD][A-Z0-9]+$/.test(target)) {
      const id = target.slice(1);
      const channel = state.snap && state.snap.channels.find((c) => c.id === id);
      return h("span", { class: "mention channel", title: id }, `#${channel ? channel.name : decode(label) || id}`);
    }
    if (target.startsWith("!subteam^")) {
      const id = target.slice("!subteam^".length);
      const group = state.snap && state.snap.groups[id];
      const handle = group ? group.handle : decode(label).replace(/^@/, "") || id;
      return h("span", { class: "mention group", title: id }, `@${handle}`);
    }
    if (target.startsWith("!date^")) {
      const parts = target.split("^");
      const epoch = Number(parts[1]);
      if (!Number.isFinite(epoch) || parts.length < 3) return document.createTextNode(decode(label));
      const text = formatDate(epoch, decode(parts[2]));
      const title = new Date(epoch * 1000).toString();
      const link = parts[3] ? decode(parts[3]) : "";
      if (link && SAFE_URL.test(link)) {
        return h("a", { class: "date", href: link, title, target: "_blank", rel: "noopener noreferrer" }, text);
      }
      return h("time", { class: "date", datetime: new Date(epoch * 1000).toISOString(), title }, text);
    }
    if (["!here", "!channel", "!everyone"].includes(target)) {
      return h("span", { class: "mention broadcast" }, `@${target.slice(1)}`);
    }
    if (target.startsWith("!")) {
      return document.createTextNode(decode(label || target.slice(1)));
    }
    const url = decode(target);
    if (SAFE_URL.test(url)) {
      return h("a", { href: url, target: "_blank", rel: "noopener noreferrer" }, decode(label || target));
    }
    return document.createTextNode(decode(label || target));
  }

  // One pass over a line: the earliest of <token>, `code`, *bold*, _italic_, ~strike~.
  const INLINE = new RegExp([
    "<([^<>\\n]+)>",
    "`([^`\\n]+)`",
    "(?<![\\w*])\\*(?!\\s)([^*\\n]+?)(?<!\\s)\\*(?![\\w*])",
    "(?<![\\w_])_(?!\\s)([^_\\n]+?)(?<!\\s)_(?![\\w_])",
    "(?<![\\w~])~(?!\\s)([^~\\n]+?)(?<!\\s)~(?![\\w~])",
  ].join("|"), "g");

  function inline(text) {
    const out = [];
    let last = 0;
    const re = new RegExp(INLINE.source, "g"); // own lastIndex: inline() recurses for *bold* etc.
    let m;
    while ((m = re.exec(text)) !== null) {
      if (m.index > last) out.push(document.createTextNode(emojify(decode(text.slice(last, m.index)))));
      if (m[1] !== undefined) out.push(angle(m[1]));
      else if (m[2] !== undefined) out.push(h("code", {}, decode(m[2])));
      else if (m[3] !== undefined) out.push(h("strong", {}, inline(m[3])));
      else if (m[4] !== undefined) out.push(h("em", {}, inline(m[4])));
      else if (m[5] !== undefined) out.push(h("del", {}, inline(m[5])));
      last = re.lastIndex;
    }
    if (last < text.length) out.push(document.createTextNode(emojify(decode(text.slice(last)))));
    return out;
  }

  function lines(text) {
    // Consecutive "> " lines make one quote; the others are joined with line breaks.
    const out = [];
    let quote = null;
    let first = true;
    for (const line of text.split("\n")) {
      if (line.startsWith(">")) {
        if (!quote) {
          quote = h("blockquote", {});
          out.push(quote);
        } else {
          quote.append(h("br"));
        }
        quote.append(...inline(line.slice(1).replace(/^ /, "")));
        first = false;
        continue;
      }
      if (!first && !quote) out.push(h("br"));
      quote = null;
      out.push(...inline(line));
      first = false;
    }
    return out;
  }

  function mrkdwn(text) {
    const root = h("span", { class: "mrkdwn" });
    const parts = text.split("```");
    parts.forEach((part, i) => {
      const isCode = i % 2 === 1 && i < parts.length - 1;
      if (isCode) root.append(h("pre", {}, decode(part.replace(/^\n/, ""))));
      else if (part) root.append(...lines(i % 2 === 1 ? "```" + part : part));
    });
    return root;
  }

  // ------------------------------------------------------------------ Block Kit

  function renderBlocks(blocks, ctx) {
    return h("div", { class: "blocks" }, (blocks || []).map((block) => renderBlock(block, ctx)));
  }

  function renderBlock(block, ctx) {
    const id = block.block_id ? { "data-block-id": block.block_id } : {};
    switch (block.type) {
      case "header":
        return h("div", { class: "b-header", ...id }, plainText(block.text));
      case "section": {
        const body = h("div", { class: "b-section-body" },
          block.text ? h("div", { class: "b-text" }, textObject(block.text)) : null,
          block.fields ? h("div", { class: "b-fields" },
            block.fields.map((f) => h("div", { class: "b-field" }, textObject(f)))) : null);
        const accessory = block.accessory ? h("div", { class: "b-accessory" }, element(block.accessory, block, ctx)) : null;
        return h("div", { class: "b-section", ...id }, body, accessory);
      }
      case "context":
        return h("div", { class: "b-context", ...id }, (block.elements || []).map((el) =>
          el.type === "image" ? h("span", { class: "b-image-alt", title: el.alt_text || "" }, "🖼") : textObject(el)));
      case "divider":
        return h("hr", { class: "b-divider" });
      case "actions":
        return h("div", { class: "b-actions", ...id }, (block.elements || []).map((el) => element(el, block, ctx)));
      case "input":
        return inputBlock(block, ctx);
      case "image":
        return h("div", { class: "b-image", ...id },
          block.title ? h("div", { class: "b-image-title" }, plainText(block.title)) : null,
          h("div", { class: "b-image-alt" }, `🖼 ${block.alt_text || "image"}`));
      case "rich_text":
        return h("div", { class: "b-rich", ...id }, (block.elements || []).map(richElement));
      default:
        return h("div", { class: "b-unknown", ...id }, `[${block.type} block]`);
    }
  }

  function richText(el) {
    const style = el.style || {};
    let node;
    switch (el.type) {
      case "text": node = document.createTextNode(String(el.text || "")); break;
      case "link": node = SAFE_URL.test(el.url || "")
        ? h("a", { href: el.url, target: "_blank", rel: "noopener noreferrer" }, el.text || el.url)
        : document.createTextNode(el.text || el.url || ""); break;
      case "user": node = angle(`@${el.user_id}`); break;
      case "usergroup": node = angle(`!subteam^${el.usergroup_id}`); break;
      case "channel": node = angle(`#${el.channel_id}`); break;
      case "broadcast": node = angle(`!${el.range}`); break;
      case "emoji": node = document.createTextNode(el.unicode
        ? String.fromCodePoint(...el.unicode.split("-").map((c) => parseInt(c, 16))) : emojify(`:${el.name}:`)); break;
      case "date": node = h("time", { class: "date" }, formatDate(el.timestamp, el.format || "{date_short} at {time}")); break;
      default: node = document.createTextNode("");
    }
    if (style.code) node = h("code", {}, node);
    if (style.bold) node = h("strong", {}, node);
    if (style.italic) node = h("em", {}, node);
    if (style.strike) node = h("del", {}, node);
    return node;
  }

  function richElement(el) {
    const kids = (el.elements || []);
    switch (el.type) {
      case "rich_text_section": return h("div", {}, kids.map(richText));
      case "rich_text_quote": return h("blockquote", {}, kids.map(richText));
      case "rich_text_preformatted": return h("pre", {}, kids.map(richText));
      case "rich_text_list": return h(el.style === "ordered" ? "ol" : "ul", {},
        kids.map((s) => h("li", {}, (s.elements || []).map(richText))));
      default: return null;
    }
  }

  // The payload's "where" for a click: a message, an ephemeral message, or a view.
  function target(ctx) {
    if (ctx.viewId) return { view_id: ctx.viewId };
    return { channel: ctx.channel, ts: ctx.ts, ephemeral: Boolean(ctx.ephemeral) };
  }

  async function act(ctx, block, el, control, selected) {
    if (el.confirm && !(await confirmDialog(el.confirm))) return;
    control.classList.add("loading");
    control.disabled = true;
    try {
      await post("click", { ...target(ctx), block_id: block.block_id, action_id: el.action_id, selected });
    } finally {
      control.classList.remove("loading");
      control.disabled = false;
    }
  }

  function options(el) {
    const list = [...(el.options || [])];
    for (const group of el.option_groups || []) list.push(...(group.options || []));
    return list;
  }

  function element(el, block, ctx) {
    switch (el.type) {
      case "button": {
        const cls = ["btn", el.style ? `btn-${el.style}` : ""].join(" ").trim();
        const button = h("button", { type: "button", class: cls, "data-action-id": el.action_id }, plainText(el.text));
        button.addEventListener("click", () => {
          if (el.url && SAFE_URL.test(el.url)) window.open(el.url, "_blank", "noopener");
          act(ctx, block, el, button);
        });
        return button;
      }
      case "static_select":
      case "overflow": {
        const select = h("select", { class: "select", "data-action-id": el.action_id },
          h("option", { value: "" }, el.type === "overflow" ? "⋯" : (el.placeholder ? el.placeholder.text : "Select…")),
          options(el).map((o) => h("option", { value: o.value }, o.text ? o.text.text : o.value)));
        select.addEventListener("change", () => {
          if (select.value) act(ctx, block, el, select, select.value);
        });
        return select;
      }
      default:
        return h("span", { class: "b-unknown" }, `[${el.type}]`);
    }
  }

  // ------------------------------------------------------------------ inputs (modals)

  function inputControl(el, block, initial) {
    const common = { "data-block-id": block.block_id, "data-action-id": el.action_id, "data-type": el.type,
      id: `input-${block.block_id}` };
    const placeholder = el.placeholder ? el.placeholder.text : null;
    switch (el.type) {
      case "plain_text_input": {
        const attrs = { ...common, placeholder, maxlength: el.max_length || null, class: "input" };
        const control = el.multiline ? h("textarea", { ...attrs, rows: 4 }) : h("input", { ...attrs, type: "text" });
        control.value = initial !== undefined ? initial : (el.initial_value || "");
        if (el.focus_on_load) control.setAttribute("autofocus", "");
        return control;
      }
      case "email_text_input":
      case "url_text_input":
      case "number_input": {
        const type = { email_text_input: "email", url_text_input: "url", number_input: "number" }[el.type];
        const control = h("input", { ...common, type, placeholder, class: "input" });
        control.value = initial !== undefined ? initial : (el.initial_value || "");
        return control;
      }
      case "datepicker":
      case "timepicker": {
        const control = h("input", { ...common, type: el.type === "datepicker" ? "date" : "time", class: "input" });
        control.value = initial !== undefined ? initial : (el.initial_date || el.initial_time || "");
        return control;
      }
      case "static_select":
      case "users_select":
      case "conversations_select":
      case "channels_select": {
        let opts = options(el).map((o) => [o.value, o.text ? o.text.text : o.value]);
        if (el.type === "users_select") opts = (state.snap.people || []).map((id) => [id, `@${userName(id)}`]);
        if (el.type !== "static_select" && el.type !== "users_select") {
          opts = state.snap.channels.filter((c) => !c.is_im).map((c) => [c.id, `#${c.name}`]);
        }
        const start = initial !== undefined ? initial
          : (el.initial_option ? el.initial_option.value : el.initial_user || el.initial_conversation || el.initial_channel || "");
        const control = h("select", { ...common, class: "input" },
          h("option", { value: "" }, placeholder || "Select…"),
          opts.map(([value, text]) => h("option", { value, selected: value === start }, text)));
        return control;
      }
      case "radio_buttons":
      case "checkboxes": {
        const multi = el.type === "checkboxes";
        const chosen = new Set(initial !== undefined ? [].concat(initial || [])
          : multi ? (el.initial_options || []).map((o) => o.value) : el.initial_option ? [el.initial_option.value] : []);
        return h("div", { ...common, class: "choices" }, options(el).map((o) => h("label", { class: "choice" },
          h("input", { type: multi ? "checkbox" : "radio", name: `choice-${block.block_id}`, value: o.value,
            checked: chosen.has(o.value) }),
          textObject(o.text))));
      }
      default:
        return h("div", { ...common, class: "b-unknown" }, `[${el.type} input]`);
    }
  }

  function readControl(control) {
    const type = control.dataset.type;
    if (type === "checkboxes") return [...control.querySelectorAll("input:checked")].map((i) => i.value);
    if (type === "radio_buttons") {
      const picked = control.querySelector("input:checked");
      return picked ? picked.value : null;
    }
    if (control.tagName === "DIV") return undefined;
    const value = control.value;
    if (control.tagName === "SELECT") return value || null;
    return value;
  }

  function isEmpty(value) {
    return value === null || value === undefined || value === "" || (Array.isArray(value) && value.length === 0);
  }

  function inputBlock(block, ctx) {
    const el = block.element || {};
    const initial = ctx.typed ? ctx.typed[block.block_id] : undefined;
    const error = ctx.errors ? ctx.errors[block.block_id] : null;
    return h("div", { class: error ? "b-input has-error" : "b-input", "data-block-id": block.block_id },
      h("label", { class: "b-input-label", for: `input-${block.block_id}` },
        plainText(block.label), block.optional ? h("span", { class: "optional" }, " (optional)") : null),
      inputControl(el, block, initial),
      error ? h("div", { class: "input-error", role: "alert" }, error) : null,
      block.hint ? h("div", { class: "b-input-hint" }, plainText(block.hint)) : null);
  }

  // ------------------------------------------------------------------ dialogs

  function confirmDialog(confirm) {
    const overlay = $("confirm-overlay");
    return new Promise((resolve) => {
      const done = (answer) => {
        overlay.hidden = true;
        clear(overlay);
        document.removeEventListener("keydown", onKey, true);
        resolve(answer);
      };
      const onKey = (event) => {
        if (event.key === "Escape") { event.stopPropagation(); done(false); }
      };
      const style = confirm.style === "danger" ? "btn-danger" : "btn-primary";
      const title = confirm.title ? confirm.title.text : "Are you sure?";
      const dialog = h("div", { class: "dialog", role: "alertdialog", "aria-modal": "true", "aria-label": title },
        h("div", { class: "dialog-title" }, plainText(confirm.title) || "Are you sure?"),
        h("div", { class: "dialog-text" }, textObject(confirm.text)),
        h("div", { class: "dialog-buttons" },
          h("button", { type: "button", class: "btn", onclick: () => done(false) },
            confirm.deny ? confirm.deny.text : "Cancel"),
          h("button", { type: "button", class: `btn ${style}`, onclick: () => done(true) },
            confirm.confirm ? confirm.confirm.text : "Yes")));
      clear(overlay);
      overlay.append(dialog);
      overlay.hidden = false;
      document.addEventListener("keydown", onKey, true);
      dialog.querySelector(`.${style}`).focus();
    });
  }

  function typedValues(container) {
    const values = {};
    for (const control of container.querySelectorAll("[data-block-id][data-type]")) {
      const value = readControl(control);
      if (value !== undefined) values[control.dataset.blockId] = value;
    }
    return values;
  }

  function renderModal() {
    const overlay = $("modal-overlay");
    let view = state.snap && state.snap.modal;
    if (view && state.closing === view.id) view = null; // closed here; the server is catching up
    if (!view) {
      state.modalKey = null;
      overlay.hidden = true;
      clear(overlay);
      return;
    }
    const key = `${view.id}:${view.hash}:${JSON.stringify(state.viewErrors[view.id] || {})}`;
    if (key === state.modalKey) return;
    // Same view redrawn (an update, new errors): what the user typed stays, as in Slack.
    const typed = state.modalKey && state.modalKey.startsWith(`${view.id}:`) ? typedValues(overlay) : {};
    state.modalKey = key;
    const ctx = { viewId: view.id, typed, errors: state.viewErrors[view.id] || {} };
    const title = view.title ? view.title.text : "";
    const submit = view.submit ? h("button", { type: "submit", class: "btn btn-primary" }, plainText(view.submit)) : null;
    const form = h("form", { class: "modal", role: "dialog", "aria-modal": "true", "aria-label": title, novalidate: true },
      h("header", { class: "modal-header" },
        h("div", { class: "modal-title" }, plainText(view.title)),
        h("button", { type: "button", class: "icon-button", "aria-label": "Close", onclick: () => closeModal(view, true) }, "✕")),
      h("div", { class: "modal-body" }, renderBlocks(view.blocks, ctx)),
      h("footer", { class: "modal-footer" },
        h("button", { type: "button", class: "btn", onclick: () => closeModal(view, false) },
          view.close ? view.close.text : "Cancel"),
        submit));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      submitModal(view, form, submit);
    });
    clear(overlay);
    overlay.append(form);
    overlay.hidden = false;
    const focus = form.querySelector("[autofocus]") || form.querySelector("textarea, input, select");
    if (focus && !typed[focus.dataset.blockId]) focus.focus();
  }

  async function submitModal(view, form, button) {
    const values = typedValues(form);
    // Slack's client checks required inputs itself before anything is sent.
    const missing = {};
    for (const block of view.blocks || []) {
      if (block.type === "input" && !block.optional && isEmpty(values[block.block_id])) {
        missing[block.block_id] = "Please complete this required field.";
      }
    }
    if (Object.keys(missing).length) {
      state.viewErrors[view.id] = missing;
      renderModal();
      return;
    }
    if (button) { button.disabled = true; button.classList.add("loading"); }
    try {
      const answer = await post("submit", { view_id: view.id, values });
      state.viewErrors[view.id] = answer.errors || {};
    } finally {
      if (button) { button.disabled = false; button.classList.remove("loading"); }
    }
    renderModal();
  }

  async function closeModal(view, all) {
    state.closing = view.id;
    delete state.viewErrors[view.id];
    renderModal();
    await post("close", { view_id: view.id, all });
  }

  // ------------------------------------------------------------------ messages

  const COLORS = ["#e8912d", "#2eb67d", "#36c5f0", "#e01e5a", "#4a154b", "#1264a3", "#ecb22e"];

  function avatar(id, name, isBot) {
    if (isBot) return h("div", { class: "avatar bot", "aria-hidden": "true" }, "H");
    let sum = 0;
    for (const c of id) sum += c.charCodeAt(0);
    const letter = (name || id).slice(0, 1).toUpperCase();
    return h("div", { class: "avatar", "aria-hidden": "true", "data-color": String(sum % COLORS.length) }, letter);
  }

  function clock(ts) {
    return new Date(Number(ts) * 1000).toLocaleTimeString([], { hour: "numeric", minute: "2-digit" });
  }

  function author(msg) {
    if (msg.bot_id || msg.user === state.snap.bot.user_id) return { name: BOT_NAME, bot: true };
    const user = state.snap.users[msg.user];
    return { name: user ? user.real_name : msg.user, bot: false };
  }

  function messageNode(msg, channel, inThread, continued) {
    const who = author(msg);
    const ctx = { channel, ts: msg.ts };
    const body = msg.blocks && msg.blocks.length ? renderBlocks(msg.blocks, ctx) : h("div", { class: "text" }, mrkdwn(msg.text || ""));
    const replies = !inThread && msg.reply_count
      ? h("button", { type: "button", class: "replies", onclick: () => openThread(channel, msg.ts) },
        `${msg.reply_count} ${msg.reply_count === 1 ? "reply" : "replies"}`)
      : null;
    const toolbar = !inThread
      ? h("div", { class: "msg-toolbar" },
        h("button", { type: "button", class: "reply-link", onclick: () => openThread(channel, msg.ts) },
          "💬 Reply in thread"))
      : null;
    const stamp = new Date(Number(msg.ts) * 1000).toString();
    // Slack groups a run of messages from one author: no avatar or name after the first.
    const gutter = continued
      ? h("div", { class: "gutter" }, h("span", { class: "time", title: stamp }, clock(msg.ts)))
      : avatar(msg.user, who.name, who.bot);
    const meta = continued ? null : h("div", { class: "msg-meta" },
      h("span", { class: "author" }, who.name),
      who.bot ? h("span", { class: "app-badge" }, "APP") : null,
      h("span", { class: "time", title: stamp }, clock(msg.ts)),
      msg.edited ? h("span", { class: "edited" }, "(edited)") : null);
    return h("div", { class: continued ? "msg continued" : "msg", "data-ts": msg.ts, "data-channel": channel,
      role: "article" },
    gutter,
    h("div", { class: "msg-main" }, meta, body, continued && msg.edited ? h("span", { class: "edited" }, "(edited)") : null,
      replies),
    toolbar);
  }

  // Whether `msg` continues a run by the same author (within 5 minutes, like Slack).
  function continues(prev, msg) {
    return Boolean(prev && prev.kind === "message" && prev.msg.user === msg.user && !prev.msg.reply_count
      && Number(msg.ts) - Number(prev.msg.ts) < 300);
  }

  function ephemeralNode(eph) {
    const key = `e:${eph.channel}:${eph.ts}`;
    const ctx = { channel: eph.channel, ts: eph.ts, ephemeral: true };
    const body = eph.blocks && eph.blocks.length ? renderBlocks(eph.blocks, ctx) : h("div", { class: "text" }, mrkdwn(eph.text || ""));
    return h("div", { class: "msg ephemeral", "data-ts": eph.ts, "data-key": key, role: "article" },
      avatar("bot", BOT_NAME, true),
      h("div", { class: "msg-main" },
        h("div", { class: "msg-meta" },
          h("span", { class: "author" }, BOT_NAME),
          h("span", { class: "app-badge" }, "APP"),
          h("span", { class: "time" }, clock(eph.ts))),
        h("div", { class: "only-you" }, "👁 Only visible to you"),
        body,
        h("button", { type: "button", class: "dismiss", onclick: () => { state.dismissed.add(key); render(); } },
          "Dismiss")));
  }

  function noticeNode(note) {
    return h("div", { class: "msg ephemeral notice", "data-key": `n:${note.id}`, role: "article" },
      h("div", { class: "avatar slackbot", "aria-hidden": "true" }, "S"),
      h("div", { class: "msg-main" },
        h("div", { class: "msg-meta" },
          h("span", { class: "author" }, "Slackbot"),
          h("span", { class: "time" }, clock(note.ts))),
        h("div", { class: "only-you" }, "👁 Only visible to you"),
        h("div", { class: "text" }, note.text),
        h("button", { type: "button", class: "dismiss",
          onclick: () => { state.notices = state.notices.filter((n) => n !== note); render(); } }, "Dismiss")));
  }

  let noticeSeq = 0;
  function notice(text) {
    noticeSeq += 1;
    state.notices.push({ id: noticeSeq, ts: Date.now() / 1000, text: String(text), place: placeKey(), me: state.me });
    render();
  }

  // Keyed update: a node is rebuilt only when what it shows changed, so scrolling, focus
  // and hover survive the live updates.
  function reconcile(container, items) {
    const existing = new Map();
    for (const node of [...container.children]) existing.set(node.dataset.key, node);
    const wanted = [];
    for (const item of items) {
      let node = existing.get(item.key);
      if (!node || node.dataset.sig !== item.sig) {
        const fresh = item.build();
        fresh.dataset.key = item.key;
        fresh.dataset.sig = item.sig;
        if (node) node.replaceWith(fresh);
        node = fresh;
      }
      existing.delete(item.key);
      wanted.push(node);
    }
    for (const node of existing.values()) node.remove();
    wanted.forEach((node, i) => {
      if (container.children[i] !== node) container.insertBefore(node, container.children[i] || null);
    });
  }

  function nearBottom(el) {
    return el.scrollHeight - el.scrollTop - el.clientHeight < 120;
  }

  function placeKey() {
    return state.place.kind === "app" ? `app:${state.place.tab}` : `ch:${state.place.id}`;
  }

  function dmId() {
    return `D${state.me.slice(1)}`;
  }

  function currentChannel() {
    if (state.place.kind === "app") return state.place.tab === "messages" ? dmId() : null;
    return state.place.id;
  }

  function topLevel(list) {
    return list.filter((m) => !m.thread_ts || m.thread_ts === m.ts || m.subtype === "thread_broadcast");
  }

  function renderMessages() {
    const box = $("messages");
    const channel = currentChannel();
    const snap = state.snap;
    const stick = nearBottom(box);
    if (!channel) {
      reconcile(box, []);
      return;
    }
    const msgs = topLevel(snap.messages[channel] || []);
    const items = msgs.map((m) => ({ kind: "message", msg: m, key: `m:${m.ts}`, ts: Number(m.ts) }));
    for (const eph of snap.ephemerals) {
      const key = `e:${eph.channel}:${eph.ts}`;
      if (eph.channel !== channel || eph.thread_ts || state.dismissed.has(key)) continue;
      items.push({ key, ts: Number(eph.ts), sig: JSON.stringify(eph), build: () => ephemeralNode(eph) });
    }
    for (const note of state.notices) {
      if (note.place !== placeKey() || note.me !== state.me) continue;
      items.push({ key: `n:${note.id}`, ts: note.ts, sig: "n", build: () => noticeNode(note) });
    }
    items.sort((a, b) => a.ts - b.ts);
    items.forEach((item, i) => {
      if (item.kind !== "message") return;
      const m = item.msg;
      const cont = continues(items[i - 1], m);
      item.sig = JSON.stringify([m, state.me, cont]);
      item.build = () => messageNode(m, channel, false, cont);
    });
    if (!items.length) {
      const empty = state.place.kind === "app"
        ? `This is the beginning of your direct messages with ${BOT_NAME}.`
        : "No messages yet. Cards appear here as agents file requests.";
      items.push({ key: "empty", ts: 0, sig: empty, build: () => h("div", { class: "empty" }, empty) });
    }
    // A new "Only visible to you" reply answers something the user just did: show it.
    const replies = items.filter((i) => i.key.startsWith("e:") || i.key.startsWith("n:")).map((i) => i.key);
    const fresh = replies.some((key) => !state.shownReplies.has(key));
    replies.forEach((key) => state.shownReplies.add(key));
    reconcile(box, items);
    if (msgs.length) state.lastSeen[channel] = msgs[msgs.length - 1].ts;
    if (stick || fresh || state.scrollToEnd) box.scrollTop = box.scrollHeight;
    state.scrollToEnd = false;
  }

  function renderThread() {
    const pane = $("thread");
    const thread = state.thread;
    if (!thread) {
      pane.hidden = true;
      return;
    }
    const list = (state.snap.messages[thread.channel] || []);
    const parent = list.find((m) => m.ts === thread.ts);
    if (!parent) {
      state.thread = null;
      pane.hidden = true;
      return;
    }
    pane.hidden = false;
    const channel = state.snap.channels.find((c) => c.id === thread.channel);
    $("thread-sub").textContent = channel ? (channel.is_im ? BOT_NAME : `#${channel.name}`) : "";
    const replies = list.filter((m) => m.thread_ts === thread.ts && m.ts !== thread.ts);
    const box = $("thread-messages");
    const stick = nearBottom(box);
    const items = [{ key: `p:${parent.ts}`, ts: 0, sig: JSON.stringify([parent, state.me]),
      build: () => messageNode(parent, thread.channel, true, false) }];
    const count = replies.length;
    items.push({ key: "divider", ts: 0, sig: String(count),
      build: () => h("div", { class: "thread-divider" }, `${count} ${count === 1 ? "reply" : "replies"}`) });
    replies.forEach((m, i) => {
      const cont = i > 0 && replies[i - 1].user === m.user && Number(m.ts) - Number(replies[i - 1].ts) < 300;
      items.push({ key: `m:${m.ts}`, ts: Number(m.ts), sig: JSON.stringify([m, state.me, cont]),
        build: () => messageNode(m, thread.channel, true, cont) });
    });
    for (const eph of state.snap.ephemerals) {
      const key = `e:${eph.channel}:${eph.ts}`;
      if (eph.channel !== thread.channel || eph.thread_ts !== thread.ts || state.dismissed.has(key)) continue;
      items.push({ key, ts: Number(eph.ts), sig: JSON.stringify(eph), build: () => ephemeralNode(eph) });
    }
    reconcile(box, items);
    if (stick) box.scrollTop = box.scrollHeight;
  }

  function openThread(channel, ts) {
    state.thread = { channel, ts };
    render();
    $("thread-input").focus();
  }

  // ------------------------------------------------------------------ sidebar, header, home

  function unread(channelId) {
    const seen = Number(state.lastSeen[channelId] || 0);
    return topLevel(state.snap.messages[channelId] || [])
      .filter((m) => Number(m.ts) > seen && m.user !== state.me).length;
  }

  function renderSidebar() {
    const snap = state.snap;
    $("team-name").textContent = snap.team.name;
    const select = $("as-user");
    if (select.options.length !== snap.people.length) {
      clear(select);
      for (const id of snap.people) {
        const user = snap.users[id];
        select.append(h("option", { value: id }, `${user.real_name} (@${user.name})`));
      }
    }
    if (select.value !== state.me) select.value = state.me;
    const list = $("channel-list");
    clear(list);
    for (const channel of snap.channels.filter((c) => !c.is_im)) {
      const active = state.place.kind === "channel" && state.place.id === channel.id;
      const count = active ? 0 : unread(channel.id);
      list.append(h("li", {},
        h("button", { type: "button", class: `nav-item${active ? " active" : ""}${count ? " unread" : ""}`,
          "data-channel": channel.id, onclick: () => go({ kind: "channel", id: channel.id }) },
        h("span", { class: "hash" }, channel.is_private ? "🔒" : "#"), channel.name,
        count ? h("span", { class: "badge" }, String(count)) : null)));
    }
    const apps = $("app-list");
    clear(apps);
    const active = state.place.kind === "app";
    const dmCount = active && state.place.tab === "messages" ? 0 : unread(dmId());
    apps.append(h("li", {},
      h("button", { type: "button", class: `nav-item${active ? " active" : ""}${dmCount ? " unread" : ""}`,
        "data-app": "hitl-bot", onclick: () => go({ kind: "app", tab: "home" }) },
      h("span", { class: "app-dot" }, "H"), BOT_NAME,
      dmCount ? h("span", { class: "badge" }, String(dmCount)) : null)));
  }

  function renderHeader() {
    const title = $("main-title");
    const sub = $("main-sub");
    const tabs = $("app-tabs");
    const input = $("composer-input");
    if (state.place.kind === "app") {
      title.textContent = BOT_NAME;
      sub.textContent = "Approvals for AI agents, decided in Slack";
      tabs.hidden = false;
      for (const tab of tabs.querySelectorAll(".tab")) {
        const on = tab.dataset.tab === state.place.tab;
        tab.classList.toggle("active", on);
        tab.setAttribute("aria-selected", on ? "true" : "false");
      }
      input.placeholder = `Message ${BOT_NAME}`;
    } else {
      const channel = state.snap.channels.find((c) => c.id === state.place.id);
      const name = channel ? channel.name : state.place.id;
      title.textContent = `# ${name}`;
      sub.textContent = name === "agent-approvals" ? "Approval cards from hitl-bot land here"
        : name === "eng-leads" ? "Engineering leads: deploys and other high-risk requests" : "";
      tabs.hidden = true;
      input.placeholder = `Message #${name}`;
    }
    const home = state.place.kind === "app" && state.place.tab === "home";
    $("home").hidden = !home;
    $("messages").hidden = home;
    $("composer").hidden = home;
  }

  function renderHome() {
    const box = $("home");
    if (!(state.place.kind === "app" && state.place.tab === "home")) return;
    const view = state.snap.home;
    const key = view ? `${view.id}:${view.hash}:${state.me}` : `none:${state.me}`;
    if (key === state.homeKey) return;
    state.homeKey = key;
    clear(box);
    if (!view) {
      box.append(h("div", { class: "empty" }, "Opening Home…"));
      return;
    }
    box.append(renderBlocks(view.blocks, { viewId: view.id }));
  }

  function render() {
    if (!state.snap) return;
    renderSidebar();
    renderHeader();
    renderMessages();
    renderThread();
    renderHome();
    renderModal();
  }

  function go(place) {
    state.place = place;
    state.scrollToEnd = true;
    if (place.kind === "app" && place.tab === "home") {
      state.homeKey = null;
      post("home", {}); // Slack sends app_home_opened each time the tab is opened
    }
    render();
    if (!(place.kind === "app" && place.tab === "home")) $("composer-input").focus();
  }

  // ------------------------------------------------------------------ live updates

  function setConn(live) {
    const el = $("conn");
    el.textContent = live ? "● live" : "reconnecting…";
    el.classList.toggle("live", live);
  }

  function connect() {
    if (state.es) state.es.close();
    const me = state.me;
    const es = new EventSource(`${API}events?as=${encodeURIComponent(me)}`);
    state.es = es;
    let opened = false;
    es.addEventListener("open", () => {
      opened = true;
      state.failures = 0;
      setConn(true);
    });
    es.addEventListener("message", (event) => {
      const snap = JSON.parse(event.data);
      if (snap.me !== state.me) return;
      if (state.closing && !(snap.modal && snap.modal.id === state.closing)) state.closing = null;
      state.snap = snap;
      render();
    });
    es.addEventListener("error", () => {
      // Each long-poll answer ends the response and EventSource reconnects by itself.
      // Only a connection that never opened means the server is gone: back off then.
      if (opened) {
        opened = false;
        return;
      }
      state.failures += 1;
      setConn(false);
      es.close();
      const delay = Math.min(5000, 250 * 2 ** Math.min(state.failures, 5));
      setTimeout(() => { if (state.es === es) connect(); }, delay);
    });
  }

  function setMe(id) {
    state.me = id;
    state.thread = null;
    state.modalKey = null;
    state.homeKey = null;
    try { localStorage.setItem("hitl-sandbox-as", id); } catch (err) { /* private mode */ }
    const url = new URL(window.location.href);
    url.searchParams.set("as", id);
    window.history.replaceState(null, "", url);
    clear($("messages"));
    clear($("thread-messages"));
    connect();
    if (state.place.kind === "app" && state.place.tab === "home") post("home", {});
  }

  // ------------------------------------------------------------------ composer

  function autosize(area) {
    area.style.height = "auto";
    area.style.height = `${Math.min(area.scrollHeight, 160)}px`;
  }

  async function send(area, threadTs) {
    const text = area.value.trim();
    if (!text) return;
    const channel = threadTs ? state.thread.channel : currentChannel();
    if (!channel) return;
    area.value = "";
    autosize(area);
    state.scrollToEnd = true;
    await post("send", { channel, text, thread_ts: threadTs || null });
  }

  function wireComposer(formId, areaId, threadTs) {
    const form = $(formId);
    const area = $(areaId);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      send(area, threadTs());
    });
    area.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        send(area, threadTs());
      }
    });
    area.addEventListener("input", () => autosize(area));
  }

  // ------------------------------------------------------------------ start

  async function start() {
    const params = new URLSearchParams(window.location.search);
    let saved = null;
    try { saved = localStorage.getItem("hitl-sandbox-as"); } catch (err) { /* private mode */ }
    state.me = params.get("as") || saved || "U0ALICE";
    try {
      // A stale or mistyped person (another workspace, an old link) falls back to Alice.
      const resp = await fetch(`${API}state?as=${encodeURIComponent(state.me)}`);
      if (resp.status === 400) state.me = "U0ALICE";
    } catch (err) { /* the stream below reports the connection */ }
    const channel = params.get("channel");
    if (channel) state.place = { kind: "channel", id: channel };
    $("as-user").addEventListener("change", (event) => setMe(event.target.value));
    $("thread-close").addEventListener("click", () => { state.thread = null; render(); });
    for (const tab of document.querySelectorAll("#app-tabs .tab")) {
      tab.addEventListener("click", () => go({ kind: "app", tab: tab.dataset.tab }));
    }
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && state.snap && state.snap.modal && $("confirm-overlay").hidden) {
        closeModal(state.snap.modal, true);
      }
    });
    wireComposer("composer", "composer-input", () => null);
    wireComposer("thread-composer", "thread-input", () => (state.thread ? state.thread.ts : null));
    connect();
  }

  document.addEventListener("DOMContentLoaded", start);
})();
