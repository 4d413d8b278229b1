// Building shadow-DOM nodes without innerHTML: server text only ever reaches textContent or
// attribute values, so a caption cannot inject markup (and Trusted Types policies need no hook).

/**
 * h('button', {part: 'next', type: 'button', onclick: fn}, 'Next') → <button part="next" …>.
 * `text` sets textContent; `on*` adds listeners; true gives an empty attribute; null/false skip.
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === 'text') el.textContent = String(value);
    else if (name.startsWith('on')) el.addEventListener(name.slice(2), value);
    else el.setAttribute(name, value === true ? '' : String(value));
  }
  el.append(...children.filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

let sheet = null;

/** Give a shadow root the shared stylesheet (parsed once per page, not once per element). */
export function adoptStyles(root, css) {
  if ('adoptedStyleSheets' in root && typeof CSSStyleSheet.prototype.replaceSync === 'function') {
    if (!sheet) {
      sheet = new CSSStyleSheet();
      sheet.replaceSync(css);
    }
    root.adoptedStyleSheets = [sheet];
  } else {
    root.append(h('style', { text: css }));
  }
}
