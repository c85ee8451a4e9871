/* 市场与摊位, 组织与活动 (app/console/pages/markets.py, orgs.py): a confirmation before forms
   that cannot be undone (form[data-confirm], e.g. reissuing a sticker voids the old one).
   No inline scripts (CSP). */
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form && form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) event.preventDefault();
  }, true);
})();
