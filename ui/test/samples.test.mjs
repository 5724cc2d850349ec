// Static checks of ui/samples/*: each sample has its own index.html, JavaScript and CSS, loads
// only local files (no CDN, no remote script/style/font), includes the facade, and never turns
// text into HTML (no innerHTML/outerHTML/insertAdjacentHTML/document.write/eval).
//   node --test ui/test/
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const SAMPLES = fileURLToPath(new URL('../samples/', import.meta.url));
const dirs = readdirSync(SAMPLES).filter((d) => statSync(path.join(SAMPLES, d)).isDirectory());

test('the samples of the issue exist', () => {
  for (const name of ['minimal', 'basic', 'techdemo', 'click2call']) { assert.ok(dirs.includes(name), name); }
});

for (const dir of dirs) {
  test(`sample ${dir}: own HTML/JS/CSS, local files only, text stays text`, () => {
    const files = readdirSync(path.join(SAMPLES, dir));
    assert.ok(files.includes('index.html'), 'index.html');
    const js = files.filter((f) => f.endsWith('.js'));
    const css = files.filter((f) => f.endsWith('.css'));
    assert.ok(js.length > 0 && css.length > 0, `own JS and CSS: ${files.join(', ')}`);
    const html = readFileSync(path.join(SAMPLES, dir, 'index.html'), 'utf8');
    assert.match(html, /<script src="\.\.\/\.\.\/webphone_api\.js"><\/script>/, 'includes the facade');
    const refs = [...html.matchAll(/\b(?:src|href)\s*=\s*"([^"]*)"/g)].map((m) => m[1]);
    for (const r of refs) {
      assert.ok(!/^[a-z][a-z0-9+.-]*:|^\/\//i.test(r), `${dir}/index.html loads a remote or absolute URL: ${r}`);
      assert.ok(files.includes(r) || r === '../../webphone_api.js', `${dir}/index.html refers to a missing file: ${r}`);
    }
    for (const f of [...js, ...css]) {
      const text = readFileSync(path.join(SAMPLES, dir, f), 'utf8');
      assert.ok(!/@import|url\(\s*['"]?(?:https?:)?\/\//i.test(text), `${dir}/${f} loads a remote resource`);
      if (f.endsWith('.js')) {
        for (const bad of ['innerHTML', 'outerHTML', 'insertAdjacentHTML', 'document.write', 'eval(', 'new Function']) {
          assert.ok(!text.includes(bad), `${dir}/${f} uses ${bad}`);
        }
      }
    }
  });
}
