import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defineConfig, type DefaultTheme } from 'vitepress';

/**
 * The docs site. Built by `npm run docs:build` (config reference and API reference are generated first) and checked
 * by `npm run docs:check`. Dead internal links fail the build (`ignoreDeadLinks` stays off); anchors are checked
 * after the build by scripts/docs/check-links.ts.
 */

/** The API sidebar written by typedoc-vitepress-theme (docs/api is generated at build time, not committed). */
function apiSidebar(): DefaultTheme.SidebarItem[] {
  const file = fileURLToPath(new URL('../api/typedoc-sidebar.json', import.meta.url));
  if (!existsSync(file)) return [];
  return JSON.parse(readFileSync(file, 'utf8')) as DefaultTheme.SidebarItem[];
}

const guide: DefaultTheme.SidebarItem[] = [
  {
    text: 'Guide',
    items: [
      { text: 'Getting started', link: '/getting-started' },
      { text: 'Concepts', link: '/concepts' },
      { text: 'Life of a message', link: '/life-of-a-message' },
      { text: 'Delivery guarantees', link: '/guarantees' },
      { text: 'Testing your handlers', link: '/testing' },
    ],
  },
  {
    text: 'Features',
    items: [
      { text: 'Retries and dead letters', link: '/features/dead-letters' },
      { text: 'Ordering and partitioning', link: '/features/ordering-partitioning' },
      { text: 'Exactly-once', link: '/features/exactly-once' },
      { text: 'Schema registry', link: '/features/schema-registry' },
      { text: 'Replay', link: '/features/replay' },
      { text: 'Large messages', link: '/features/large-messages' },
      { text: 'Redis Cluster', link: '/features/redis-cluster' },
      { text: 'Security', link: '/features/security' },
      { text: 'Cross-region replication', link: '/features/replication' },
      { text: 'Compliance and audit', link: '/features/compliance' },
    ],
  },
  {
    text: 'Operations',
    items: [
      { text: 'Operating it', link: '/operations' },
      { text: 'Tracing and metrics', link: '/features/observability' },
      { text: 'Command line', link: '/cli' },
      { text: 'Operator console', link: '/features/console' },
      { text: 'Scale', link: '/scale' },
    ],
  },
  {
    text: 'Reference',
    items: [
      { text: 'Configuration', link: '/configuration' },
      { text: 'Wire format and Redis keys', link: '/wire-format' },
      { text: 'API', link: '/api/' },
    ],
  },
  {
    text: 'Project',
    items: [
      { text: 'Development', link: '/development' },
      { text: 'What is not there yet', link: '/limitations' },
    ],
  },
];

export default defineConfig({
  title: 'nestjs-redis-streams-enterprise',
  description: 'A NestJS transport over Redis Streams consumer groups: delivery guarantees, ordering, exactly-once, schemas, replay.',
  base: process.env.DOCS_BASE ?? '/',
  lang: 'en-US',
  cleanUrls: false,
  lastUpdated: false,
  // The README written for the swap (docs/README-after.md) is a repository file, not a page of the site.
  srcExclude: ['README-after.md'],
  markdown: {
    theme: { light: 'github-light', dark: 'github-dark' },
  },
  themeConfig: {
    nav: [
      { text: 'Guide', link: '/getting-started' },
      { text: 'Features', link: '/features/ordering-partitioning' },
      { text: 'Configuration', link: '/configuration' },
      { text: 'API', link: '/api/' },
    ],
    sidebar: {
      '/api/': [{ text: 'API reference', link: '/api/', items: apiSidebar() }, ...guide],
      '/': guide,
    },
    outline: { level: [2, 3] },
    search: { provider: 'local' },
    socialLinks: [{ icon: 'github', link: 'https://github.com/nestjs-redis-streams-enterprise/nestjs-redis-streams-enterprise' }],
  },
});
