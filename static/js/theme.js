// Apply the saved theme before first paint (loaded in <head>, not deferred). No saved choice:
// the CSS follows prefers-color-scheme.
(function () {
  try {
    var saved = window.localStorage.getItem("storecast-theme");
    if (saved === "light" || saved === "dark") {
      document.documentElement.setAttribute("data-theme", saved);
    }
  } catch (e) {
    /* storage disabled: follow the system */
  }
})();
