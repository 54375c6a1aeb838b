// Light progressive enhancement: every page works without this file.
"use strict";
document.addEventListener("submit", (event) => {
  // Forms that do something hard to undo ask first (data-confirm="...").
  const question = event.target.getAttribute("data-confirm");
  if (question && !window.confirm(question)) event.preventDefault();
});
document.addEventListener("change", (event) => {
  // Filter forms apply as soon as a choice changes.
  const form = event.target.form;
  if (form && form.hasAttribute("data-autosubmit")) form.requestSubmit();
});
