// The dashboard's only script. Every page works without it; it adds two
// conveniences: the error summary of a form takes the focus (so a screen
// reader reads it first), and the compaction progress bar on the store page
// follows the compaction until it ends.
(function () {
  'use strict';

  var summary = document.querySelector('.error-summary[tabindex]');
  if (summary) {
    summary.focus();
  }

  var box = document.getElementById('compaction');
  var url = box && box.getAttribute('data-status-url');
  if (!url) {
    return;
  }
  var bar = document.getElementById('compaction-progress');
  var text = document.getElementById('compaction-status');

  function size(n) {
    var units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    var i = 0;
    while (n >= 1024 && i < units.length - 1) {
      n /= 1024;
      i += 1;
    }
    return i === 0 ? n + ' B' : n.toFixed(1) + ' ' + units[i];
  }

  function poll() {
    fetch(url, { credentials: 'same-origin', headers: { Accept: 'application/json' } })
      .then(function (r) {
        if (!r.ok) {
          throw new Error('status ' + r.status);
        }
        return r.json();
      })
      .then(function (s) {
        if (s.state !== 'running') {
          window.location.replace('/store');
          return;
        }
        if (bar) {
          bar.max = Math.max(s.total, 1);
          bar.value = s.done;
        }
        if (text) {
          text.textContent = size(s.done) + ' of ' + size(s.total) + ' rewritten.';
        }
        window.setTimeout(poll, 400);
      })
      .catch(function () {
        window.setTimeout(poll, 2000);
      });
  }

  window.setTimeout(poll, 200);
})();
