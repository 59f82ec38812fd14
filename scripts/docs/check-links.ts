/**
 * Link and anchor check of the built docs site (docs/.vitepress/dist), offline: every internal `href` of every page
 * must name a file of the build, and its `#fragment` an `id` on the target page (or on the same page for `#x`).
 * VitePress already fails the build on a link to a missing page; this adds the anchors, which it does not check.
 * External links (http:, https:, mailto:) are counted, not fetched.
 *
 *   node dist/scripts/docs/check-links.js [distDir]
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const DIST = resolve(process.argv[2] ?? join(ROOT, 'docs/.vitepress/dist'));
/** The site's base path (VitePress `base`), stripped from absolute links. */
const BASE = process.env.DOCS_BASE ?? '/';

function htmlFiles(dir: string): string[] {
  const files: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) files.push(...htmlFiles(path));
    else if (name.endsWith('.html')) files.push(path);
  }
  return files;
}

function decodeEntities(text: string): string {
  return text
    .replace(/&amp;/g, '&')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>');
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text; // not percent-encoded after all: compare as written
  }
}

/** The ids a page defines (headings, explicit anchors). */
const idCache = new Map<string, Set<string>>();
function idsOf(file: string): Set<string> {
  let ids = idCache.get(file);
  if (!ids) {
    ids = new Set<string>();
    for (const m of readFileSync(file, 'utf8').matchAll(/\s(?:id|name)="([^"]*)"/g)) ids.add(decodeEntities(m[1]));
    idCache.set(file, ids);
  }
  return ids;
}

/** The built file a site path resolves to, as VitePress serves it (`/a/b`, `/a/b.html`, `/a/`). */
function targetFile(pathPart: string, from: string): string | undefined {
  let path: string;
  if (pathPart.startsWith('/')) {
    const withoutBase = pathPart.startsWith(BASE) ? pathPart.slice(BASE.length - 1) : pathPart;
    path = join(DIST, withoutBase);
  } else {
    path = resolve(dirname(from), pathPart);
  }
  const candidates = [path, `${path}.html`, join(path, 'index.html')];
  return candidates.find((c) => existsSync(c) && statSync(c).isFile());
}

let checked = 0;
let external = 0;
const broken: string[] = [];
const files = htmlFiles(DIST);
if (files.length === 0) {
  console.error(`no HTML files under ${relative(ROOT, DIST)}: build the site first (npm run docs:build)`);
  process.exit(1);
}
for (const file of files) {
  const html = readFileSync(file, 'utf8');
  for (const m of html.matchAll(/\shref="([^"]*)"/g)) {
    const href = decodeEntities(m[1]);
    if (/^(https?:|mailto:|tel:|data:|javascript:)/i.test(href) || href.startsWith('//')) {
      external++;
      continue;
    }
    checked++;
    const hash = href.indexOf('#');
    const pathPart = safeDecode((hash >= 0 ? href.slice(0, hash) : href).split('?')[0]);
    const fragment = hash >= 0 ? safeDecode(href.slice(hash + 1)) : '';
    const target = pathPart === '' ? file : targetFile(pathPart, file);
    const page = relative(DIST, file);
    if (!target) {
      broken.push(`${page}: ${href} (no such page or file)`);
      continue;
    }
    if (fragment !== '' && target.endsWith('.html') && !idsOf(target).has(fragment)) {
      broken.push(`${page}: ${href} (no anchor "${fragment}" on ${relative(DIST, target)})`);
    }
  }
}

for (const line of broken) console.error(`broken link: ${line}`);
console.log(`links: ${files.length} pages, ${checked} internal links checked, ${broken.length} broken, ${external} external (not fetched)`);
process.exit(broken.length === 0 ? 0 : 1);
