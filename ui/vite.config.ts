import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// `npm run dev` forwards the API to a ferry-server on FERRY_SERVER (default localhost:8080).
const server = process.env.FERRY_SERVER ?? "http://127.0.0.1:8080";

export default defineConfig({
  plugins: [react()],
  build: { outDir: "dist", emptyOutDir: true, sourcemap: false },
  server: { proxy: { "/api": server, "/auth": server } },
});
