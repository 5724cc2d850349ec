// Checks that every theme of skins/softphone/js/softphone/themes.js keeps WCAG AA contrast:
// 4.5:1 for every colour pair the skin uses to draw text (1.4.3), 3:1 for what marks a control
// or its state without text (1.4.11): the focus ring, the selected tab's bar, and the border of
// text fields (filled with the surface colour, on cards or the page). Run: node contrast.mjs
import fs from 'node:fs';
import vm from 'node:vm';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const file = path.join(here, '../../skins/softphone/js/softphone/themes.js');

export function loadThemes() {
  const ctx = {};
  vm.createContext(ctx);
  vm.runInContext(fs.readFileSync(file, 'utf8') + '\nthis.themelist = themelist;', ctx);
  return ctx.themelist;
}

function lum(hex) {
  const m = /^#([0-9a-f]{6})$/i.exec(hex);
  if (!m) throw new Error('not a #rrggbb colour: ' + hex);
  const c = [0, 2, 4].map(i => parseInt(m[1].slice(i, i + 2), 16) / 255)
    .map(v => (v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4)));
  return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
}
export function ratio(a, b) {
  const la = lum(a), lb = lum(b);
  return (Math.max(la, lb) + 0.05) / (Math.min(la, lb) + 0.05);
}

// [foreground, background, minimum]
const PAIRS = [
  ['text', 'bg', 4.5], ['text', 'surface', 4.5], ['text', 'button', 4.5], ['text', 'buttonhover', 4.5],
  ['muted', 'bg', 4.5], ['muted', 'surface', 4.5], ['muted', 'button', 4.5],
  ['accent', 'bg', 4.5], ['accent', 'surface', 4.5], ['accent', 'button', 4.5],
  ['primarytext', 'primary', 4.5], ['calltext', 'call', 4.5], ['hanguptext', 'hangup', 4.5],
  ['danger', 'surface', 4.5], ['danger', 'bg', 4.5],
  ['focus', 'bg', 3], ['focus', 'surface', 3], ['tabselected', 'surface', 3], ['border', 'surface', 3], ['border', 'bg', 3],
];

export function checkThemes() {
  const problems = [];
  for (const th of loadThemes()) {
    for (const [fg, bg, min] of PAIRS) {
      const r = ratio(th.colors[fg], th.colors[bg]);
      if (r < min) problems.push(`${th.id} (${th.name}): ${fg} ${th.colors[fg]} on ${bg} ${th.colors[bg]} = ${r.toFixed(2)} < ${min}`);
    }
  }
  return problems;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const p = checkThemes();
  if (p.length) { console.log(p.join('\n')); process.exit(1); }
  console.log(`contrast: ${loadThemes().length} themes pass`);
}
