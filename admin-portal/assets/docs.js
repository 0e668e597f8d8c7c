// Starts Swagger UI on /docs (a file, not an inline script: the Content-Security-Policy
// allows scripts from this server only).
window.ui = SwaggerUIBundle({
  url: document.getElementById("swagger-ui").dataset.specUrl,
  dom_id: "#swagger-ui",
  deepLinking: true,
  persistAuthorization: true,
  tryItOutEnabled: true,
  // No badge fetched from a validator elsewhere.
  validatorUrl: null,
});
