// Builds the page assets into dist/ (committed; the server embeds them and serves them under
// /assets/): app.js from src/main.ts, app.css from govuk-frontend's compiled CSS with its asset
// URLs pointing at /assets/fonts/… and /assets/images/…, and govuk-frontend's fonts and images.
//
// The output depends only on the sources and the locked packages: no timestamps, no absolute
// paths, files written in a fixed order. CI runs `npm ci && node build.mjs` and fails when
// dist/ then differs from the commit.

import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

const here = dirname(fileURLToPath(import.meta.url))
const dist = join(here, 'dist')
const govuk = join(here, 'node_modules', 'govuk-frontend', 'dist', 'govuk')

rmSync(dist, { recursive: true, force: true })
mkdirSync(join(dist, 'fonts'), { recursive: true })
mkdirSync(join(dist, 'images'), { recursive: true })

await build({
  entryPoints: [join(here, 'src', 'main.ts')],
  outfile: join(dist, 'app.js'),
  bundle: true,
  format: 'esm',
  minify: true,
  target: 'es2022',
  platform: 'browser',
  // Licence comments of the bundled packages, gathered at the end of the file.
  legalComments: 'eof',
  sourcemap: false,
  absWorkingDir: here,
  logLevel: 'warning',
})

// Fonts and images, in name order.
for (const kind of ['fonts', 'images']) {
  for (const name of readdirSync(join(govuk, 'assets', kind)).sort()) {
    // Copied by content, so the file mode does not come along from the package.
    writeFileSync(join(dist, kind, name), readFileSync(join(govuk, 'assets', kind, name)))
  }
}

// The stylesheet: every url() that names a govuk-frontend asset is rewritten to /assets/KIND/NAME,
// and must name a file copied above; the source map comment goes, as the map is not shipped.
let css = readFileSync(join(govuk, 'govuk-frontend.min.css'), 'utf8')
css = css.replace(/\n?\/\*# sourceMappingURL=[^*]*\*\/\s*$/, '\n')
css = css.replace(/url\((['"]?)([^'")]+)\1\)/g, (whole, _quote, url) => {
  if (url.startsWith('data:')) return whole
  const match = /(?:^|\/)(fonts|images)\/([^/?#]+)$/.exec(url)
  if (!match) throw new Error(`app.css: unexpected asset URL ${url}`)
  const [, kind, name] = match
  if (!existsSync(join(dist, kind, name))) throw new Error(`app.css: ${url} names no file of govuk-frontend`)
  return `url(/assets/${kind}/${name})`
})
writeFileSync(join(dist, 'app.css'), css)
