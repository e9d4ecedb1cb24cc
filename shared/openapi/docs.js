// Starts Swagger UI on the OpenAPI document of this same origin. Relative
// URLs keep the page working behind any host; persistAuthorization keeps
// the API key entered once with "Authorize" across reloads; validatorUrl
// null stops the page from calling validator.swagger.io.
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    persistAuthorization: true,
    displayRequestDuration: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout"
  });
});
