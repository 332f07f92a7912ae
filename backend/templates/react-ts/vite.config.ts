import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

export default defineConfig({
  plugins: [react()],
  // Seen through Porta's preview, the page's host is the preview's (`5173--<server>.<domain>`),
  // not localhost: the dev server must answer it. It still listens on 127.0.0.1 only.
  server: { port: 5173, strictPort: true, allowedHosts: true },
});
