import { defineConfig } from 'vite';

// The bundle is committed under src/autolog/ui/static so `pip install` needs no node.
// Reproducible: hashed names from content only, no timestamps, no inline scripts or styles
// (the server's Content-Security-Policy has no 'unsafe-inline').
export default defineConfig({
  base: '/',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: '../src/autolog/ui/static',
    emptyOutDir: true,
    target: 'es2020',
    sourcemap: false,
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    reportCompressedSize: true,
    chunkSizeWarningLimit: 400,
  },
  server: {
    // `npm run dev` against `autolog ui --port 5050` on this machine
    proxy: { '/api': 'http://127.0.0.1:5050' },
  },
});
