// Vendors the pinned yjs (package-lock.json) into static/kasagi/vendor/yjs.mjs: one ES
// module the browser loads from our own static files (no CDN at run time).
//
//   node build.mjs           write the bundle
//   node build.mjs --check   exit 1 if the committed bundle is not what the lock builds
//
// esbuild's output depends only on its version and its input (both pinned), so the
// check is a byte comparison (tests/interop/test_vendored_yjs.py runs it in CI).
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const here = fileURLToPath(new URL(".", import.meta.url));
const target = fileURLToPath(new URL("../../static/kasagi/vendor/yjs.mjs", import.meta.url));
const version = JSON.parse(readFileSync(`${here}node_modules/yjs/package.json`, "utf8")).version;

const result = await build({
  stdin: { contents: 'export * from "yjs";\n', resolveDir: here, loader: "js" },
  bundle: true,
  format: "esm",
  minify: true,
  target: "es2020",
  legalComments: "eof",
  banner: { js: `// yjs ${version} and lib0 (MIT, by Kevin Jahns), bundled by clients/js-yjs/build.mjs` },
  write: false,
  logLevel: "warning",
});
const bundle = result.outputFiles[0].text;

if (process.argv.includes("--check")) {
  let committed = "";
  try {
    committed = readFileSync(target, "utf8");
  } catch {
    // missing: not up to date
  }
  if (committed !== bundle) {
    console.error(`${target} is not what the pinned yjs builds: run node clients/js-yjs/build.mjs`);
    process.exit(1);
  }
  console.log(`${target} is up to date (yjs ${version})`);
} else {
  writeFileSync(target, bundle);
  console.log(`wrote ${target} (yjs ${version}, ${bundle.length} bytes)`);
}
