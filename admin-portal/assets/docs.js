// Starts Swagger UI on /docs (a file, not an inline script: the Content-Security-Policy
// allows scripts from this server only).
window.ui = SwaggerUIBundle({
  url: document.getElementById("swagger-ui").dataset.specUrl,
  dom_id: "#swagger-ui",
  deepLinking: true,
  // Tags start folded: with every one of the ~150 operations listed at once, Swagger UI
  // 5.35 stops rendering part-way (seen in headless Chromium above 141 operations); a
  // tag opens on a click and shows all of its operations.
  docExpansion: "none",
  persistAuthorization: true,
  tryItOutEnabled: true,
  // No badge fetched from a validator elsewhere.
  validatorUrl: null,
});
