// Progressive enhancement only: every page works without this file.
// Loaded with <script defer> (no inline scripts), so a strict Content-Security-Policy holds.
(function () {
  "use strict";

  // "/" focuses the search (or topic) box, as on many search sites.
  document.addEventListener("keydown", function (event) {
    if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey) return;
    var target = event.target;
    if (target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName))) return;
    var box = document.getElementById("q") || document.getElementById("topic");
    if (box) {
      event.preventDefault();
      box.focus();
      box.select();
    }
  });

  // "Copy as Markdown": the clipboard when the browser allows it; otherwise open the Markdown
  // box and select its text so Ctrl+C / long-press copies it.
  var button = document.getElementById("copy-md");
  if (!button) return;
  var area = document.getElementById(button.getAttribute("data-target"));
  var status = document.getElementById("copy-status");
  if (!area) return;
  button.hidden = false;

  function say(message) {
    if (status) status.textContent = message;
  }

  function showMarkdown() {
    var box = document.getElementById("markdown-box");
    if (box) box.open = true;
    area.focus();
    area.select();
    say("Select all and copy the Markdown below.");
  }

  button.addEventListener("click", function () {
    var text = area.value;
    if (!navigator.clipboard || !window.isSecureContext) {
      showMarkdown();
      return;
    }
    navigator.clipboard.writeText(text).then(
      function () { say("Copied as Markdown."); },
      showMarkdown
    );
  });
})();
