/* joulegate /docs: Swagger UI from the package (vendor/swagger-ui), reading /openapi.json.
   No CDN: the gateway may run with no internet. */
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
});
document.documentElement.dataset.loaded = "true";
