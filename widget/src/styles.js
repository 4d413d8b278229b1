// The elements' shadow-DOM styles. Hosts theme them with the --bookidx-* custom properties
// below (they inherit through the shadow boundary) or restyle any piece through ::part().

export const CSS = `
:host {
  --_fg: var(--bookidx-color, CanvasText);
  --_bg: var(--bookidx-background, Canvas);
  --_muted: var(--bookidx-muted-color, color-mix(in srgb, var(--_fg) 68%, var(--_bg)));
  --_accent: var(--bookidx-accent-color, #0b5cad);
  --_on-accent: var(--bookidx-on-accent-color, #fff);
  --_card: var(--bookidx-card-background, color-mix(in srgb, var(--_fg) 4%, var(--_bg)));
  --_border: var(--bookidx-border-color, color-mix(in srgb, var(--_fg) 22%, var(--_bg)));
  --_error: var(--bookidx-error-color, #b00020);
  --_radius: var(--bookidx-radius, 6px);
  --_gap: var(--bookidx-gap, 0.75rem);
  --_thumb: var(--bookidx-thumbnail-size, 10rem);
  --_focus: var(--bookidx-focus-ring, 3px solid var(--_accent));
  display: block;
  color: var(--_fg);
  font: var(--bookidx-font, inherit);
  container-type: inline-size;
}
:host([hidden]) { display: none; }
* { box-sizing: border-box; }
.visually-hidden {
  position: absolute; width: 1px; height: 1px; margin: -1px; padding: 0; overflow: hidden;
  clip: rect(0 0 0 0); white-space: nowrap; border: 0;
}
form { display: flex; gap: 0.5rem; flex-wrap: wrap; margin-block-end: var(--_gap); }
input {
  flex: 1 1 16rem; min-width: 0; font: inherit; color: var(--_fg); background: var(--_bg);
  padding: 0.5rem 0.65rem; border: 1px solid var(--_border); border-radius: var(--_radius);
}
button {
  font: inherit; cursor: pointer; padding: 0.5rem 0.9rem; border-radius: var(--_radius);
  border: 1px solid var(--_accent); background: var(--_bg); color: var(--_accent);
}
button[part~="submit"] { background: var(--_accent); color: var(--_on-accent); }
[part~="root"][data-dropping] { outline: 2px dashed var(--_accent); outline-offset: 4px; border-radius: var(--_radius); }
.chip {
  display: inline-flex; align-items: center; gap: 0.25rem; padding: 0.2rem;
  border: 1px solid var(--_border); border-radius: var(--_radius); background: var(--_card);
}
.chip[hidden] { display: none; }
.chip-thumb {
  display: block; width: var(--bookidx-image-chip-size, 2.25rem); height: var(--bookidx-image-chip-size, 2.25rem);
  object-fit: cover; border-radius: calc(var(--_radius) / 2);
}
/* Words ↔ picture: a row of its own under the box (so the box does not narrow under the
   typing that shows it), while there are both. */
.weight { display: flex; align-items: center; gap: 0.5rem; flex: 1 1 100%; }
.weight[hidden] { display: none; }
.weight-end { font-size: 0.9em; color: var(--_muted); }
input[type="range"] {
  flex: 0 1 var(--bookidx-weight-width, 20rem); min-width: 6rem; padding: 0; border: 0; background: none;
  accent-color: var(--_accent);
}
button.chip-clear { padding: 0.1rem 0.45rem; line-height: 1; border-color: transparent; color: var(--_fg); }
button:disabled { cursor: default; opacity: 0.45; }
input:focus-visible, button:focus-visible, [role="option"]:focus-visible {
  outline: var(--_focus); outline-offset: 2px;
}
.status { display: flex; align-items: center; gap: 0.75rem; min-height: 1.5em; margin-block-end: 0.5rem; color: var(--_muted); }
.status[data-state="error"] { color: var(--_error); }
.status[data-state="slow"]::before {
  content: ""; width: 0.9em; height: 0.9em; border-radius: 50%;
  border: 2px solid var(--_border); border-top-color: var(--_accent);
  animation: spin 0.9s linear infinite;
}
@keyframes spin { to { transform: rotate(1turn); } }
@media (prefers-reduced-motion: reduce) { .status[data-state="slow"]::before { animation: none; } }
.grid {
  display: grid; gap: var(--_gap); padding: 0; margin: 0;
  grid-template-columns: repeat(auto-fill, minmax(min(var(--_thumb), 100%), 1fr));
}
.grid[aria-busy="true"] { opacity: 0.55; }
.grid:empty { display: none; }
[role="option"] {
  position: relative; display: flex; flex-direction: column; gap: 0.3rem; cursor: pointer; min-width: 0;
  padding: 0.45rem; background: var(--_card); border: 1px solid var(--_border); border-radius: var(--_radius);
}
[role="option"][aria-selected="true"] { border-color: var(--_accent); box-shadow: 0 0 0 2px var(--_accent); }
.thumb {
  display: block; width: 100%; aspect-ratio: 3 / 4; object-fit: contain;
  background: color-mix(in srgb, var(--_fg) 8%, var(--_bg)); border-radius: calc(var(--_radius) / 2);
}
/* Over the thumbnail's corner, where the eye lands first: the server verified the very picture. */
.exact {
  position: absolute; inset-block-start: 0.75rem; inset-inline-start: 0.75rem; max-width: calc(100% - 1.5rem);
  padding: 0.15rem 0.5rem; border-radius: 999px; font-size: 0.8em; font-weight: 600;
  background: var(--bookidx-exact-background, var(--_accent)); color: var(--bookidx-exact-color, var(--_on-accent));
  box-shadow: 0 0 0 2px var(--_bg);
}
.caption {
  display: -webkit-box; -webkit-box-orient: vertical; -webkit-line-clamp: 3; overflow: hidden;
  overflow-wrap: anywhere; hyphens: auto;
}
.meta, .score { font-size: 0.85em; color: var(--_muted); overflow-wrap: anywhere; }
.score { font-variant-numeric: tabular-nums; }
nav { display: flex; align-items: center; justify-content: center; gap: 0.75rem; margin-block-start: var(--_gap); }
nav[hidden] { display: none; }
`;
