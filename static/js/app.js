// Storecast page behaviour: theme toggle, a loading bar for every htmx request, small form helpers.
// No inline scripts anywhere (CSP script-src 'self'); htmx itself comes from static/vendor/.
(function () {
  "use strict";
  var root = document.documentElement;

  function currentTheme() {
    var explicit = root.getAttribute("data-theme");
    if (explicit) return explicit;
    return window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
  }

  function setupThemeToggle() {
    var button = document.getElementById("theme-toggle");
    if (!button) return;
    button.setAttribute("aria-pressed", currentTheme() === "dark" ? "true" : "false");
    button.addEventListener("click", function () {
      var next = currentTheme() === "dark" ? "light" : "dark";
      root.setAttribute("data-theme", next);
      button.setAttribute("aria-pressed", next === "dark" ? "true" : "false");
      try {
        window.localStorage.setItem("storecast-theme", next);
      } catch (e) {
        /* storage disabled: the choice lasts for this page */
      }
    });
  }

  // A thin bar at the top while any htmx request is in flight (forms add their own spinner too).
  var inFlight = 0;
  function loading(delta) {
    inFlight = Math.max(0, inFlight + delta);
    root.classList.toggle("is-loading", inFlight > 0);
  }

  // Show or hide the fields that only make sense for one week (or for several).
  function syncWeeksMode(scope) {
    var forms = (scope || document).querySelectorAll("[data-weeks-form]");
    forms.forEach(function (form) {
      var input = form.querySelector("input[name=weeks]");
      if (!input) return;
      var multi = parseInt(input.value, 10) > 1;
      form.classList.toggle("is-multi", multi);
    });
  }

  // Show the chosen file's name next to the custom upload button.
  function syncFileNames(scope) {
    (scope || document).querySelectorAll("input[type=file][data-file-label]").forEach(function (input) {
      var label = document.getElementById(input.getAttribute("data-file-label"));
      if (label) label.textContent = input.files && input.files.length ? input.files[0].name : "No file chosen";
    });
  }

  // On a narrow screen a time-series chart scrolls inside its card: show the forecast end first.
  function scrollChartsToEnd() {
    document.querySelectorAll(".chart[data-scroll-end]").forEach(function (chart) {
      chart.scrollLeft = chart.scrollWidth;
    });
  }

  // The navigation's Plan and Operate groups: open (every link in a row) on a wide screen, menus that
  // drop down on a narrow one; one menu at a time, closed by Escape or a click elsewhere.
  var wide = window.matchMedia ? window.matchMedia("(min-width: 900px)") : null;
  function navGroups() { return document.querySelectorAll("[data-nav-group]"); }
  function syncNav() {
    var open = !!(wide && wide.matches);
    navGroups().forEach(function (group) { group.open = open; });
  }
  function setupNav() {
    syncNav();
    if (wide && wide.addEventListener) wide.addEventListener("change", syncNav);
    navGroups().forEach(function (group) {
      group.addEventListener("toggle", function () {
        if (wide && wide.matches) { if (!group.open) group.open = true; return; }
        if (group.open) navGroups().forEach(function (other) { if (other !== group) other.open = false; });
      });
    });
    document.addEventListener("click", function (event) {
      if (wide && wide.matches) return;
      navGroups().forEach(function (group) { if (!group.contains(event.target)) group.open = false; });
    });
    document.addEventListener("keydown", function (event) {
      if (event.key !== "Escape" || (wide && wide.matches)) return;
      navGroups().forEach(function (group) {
        if (group.open) { group.open = false; group.querySelector("summary").focus(); }
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    setupThemeToggle();
    setupNav();
    syncWeeksMode(document);
    scrollChartsToEnd();
  });
  // The covariate placeholders show the model's values for the chosen store, department and week.
  function refreshPlaceholders() {
    var body = document.getElementById("covariates-body");
    if (body && window.htmx) window.htmx.trigger(body, "refresh-placeholders");
  }

  document.addEventListener("input", function (event) {
    if (event.target && event.target.name === "weeks") syncWeeksMode(document);
  });
  document.addEventListener("change", function (event) {
    if (event.target && event.target.type === "file") syncFileNames(document);
    var name = event.target && event.target.name;
    if (name === "dept" || name === "date") refreshPlaceholders();
  });
  document.addEventListener("click", function (event) {
    var preset = event.target.closest && event.target.closest("[data-set-weeks]");
    if (!preset) return;
    var form = preset.closest("form");
    var input = form && form.querySelector("input[name=weeks]");
    if (input) {
      input.value = preset.getAttribute("data-set-weeks");
      syncWeeksMode(document);
    }
  });
  document.addEventListener("htmx:beforeRequest", function () { loading(1); });
  document.addEventListener("htmx:afterRequest", function () { loading(-1); });
  // A form's answer: say it (the announcer lives outside the swapped panel, so screen readers hear
  // it), and bring it into view with the focus on it; a refused form puts the focus on its first
  // field in error instead.
  function presentAnswer(scope) {
    var invalid = scope.querySelector("[aria-invalid=true]");
    var answer = scope.querySelector("[data-result]");
    var announcer = document.getElementById("announcer");
    if (announcer) {
      var error = invalid && document.getElementById(invalid.getAttribute("aria-describedby") || "");
      var said = invalid ? "The form has a problem: " + (error ? error.textContent : "see the marked field")
        : answer && answer.getAttribute("data-announce");
      if (said) {
        announcer.textContent = "";
        window.setTimeout(function () { announcer.textContent = said; }, 50);
      }
    }
    var target = invalid || answer;
    if (target) {
      target.focus({ preventScroll: true });
      target.scrollIntoView({ block: "start", behavior: "auto" });
    }
  }

  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.target && event.target.id === "dept-field") refreshPlaceholders();  // the store changed
    syncWeeksMode(document);
    scrollChartsToEnd();
  });
  document.addEventListener("htmx:afterSettle", function (event) {
    var source = event.detail && event.detail.requestConfig && event.detail.requestConfig.elt;
    if (source && source.tagName === "FORM") presentAnswer(document.getElementById("main") || document);
  });
  // A failed htmx request (server error, network) must not fail silently.
  document.addEventListener("htmx:responseError", function (event) {
    var target = document.getElementById("flash");
    if (target) {
      target.textContent = "The request failed (" + event.detail.xhr.status + "). Please try again.";
      target.hidden = false;
    }
  });
})();
