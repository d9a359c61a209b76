// Builds the viewer into the Python package (src/cubeport/web/static), which serves it at /.
// Everything is bundled: nothing is loaded from a CDN at run time.
import { build } from "esbuild";
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { gzipSync } from "node:zlib";

const out = new URL("../src/cubeport/web/static/", import.meta.url).pathname;
mkdirSync(out, { recursive: true });
await build({
  entryPoints: { viewer: "src/main.ts" },
  bundle: true, minify: true, sourcemap: true, target: "es2020", format: "iife",
  outdir: out, logLevel: "warning",
});
copyFileSync("index.html", out + "index.html");
// gzip beside the large files: the server sends them to browsers that accept gzip (703 kB -> 222 kB)
for (const name of ["viewer.js", "viewer.css"]) {
  writeFileSync(out + name + ".gz", gzipSync(readFileSync(out + name), { level: 9 }));
}
