// Starts the job page's plot data request while the page is still parsed, so the server works
// meanwhile (an external file: the pages run under a Content-Security-Policy without inline scripts).
"use strict";
(function () {
  const url = document.currentScript && document.currentScript.dataset.series;
  if (!url) return;
  window.hwnasSeriesStart = performance.now();
  window.hwnasSeries = fetch(url).then((r) => r.ok ? r.json() : Promise.reject(new Error(`series: HTTP ${r.status}`)));
  window.hwnasSeries.catch(() => {});  // handled where it is awaited
})();
