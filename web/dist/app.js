// Placeholder until the browser build (web/, esbuild) commits the page bundle here.
