// Runtime endpoint config for the Scale Diffusion web client.
// The local stack replaces this file (or injects an inline script) to point the client at its
// services, e.g.:
//   window.__SD_CONFIG__ = {
//     ingestUrl: "http://127.0.0.1:8080",
//     diffusionUrl: "http://127.0.0.1:8081",
//     trainerUrl: "http://127.0.0.1:8083",
//   };
// Build-time VITE_*_URL env vars take precedence over this; unset fields use the defaults.
