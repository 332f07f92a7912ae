import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

export default defineConfig({
  plugins: [react()],
  server: {
    // On the server's loopback only: Porta's preview reaches it through the server's bridge.
    host: "127.0.0.1",
    port: 5173,
    strictPort: true,
    // Seen through the preview, the page's host is the preview's (`5173--<server>.<domain>`,
    // or Porta's own), not localhost, so Vite's host check would refuse it. That check guards
    // a dev server on a person's own machine against DNS rebinding; to keep it, list the
    // hosts instead, e.g. [".porta.example.com"].
    allowedHosts: true,
  },
});
