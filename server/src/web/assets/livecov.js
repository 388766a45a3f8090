// The service page's buttons: a snapshot (or a snapshot and reset) through the API, with the
// admin token typed into the page; sessionStorage keeps it for this tab only. On success the
// browser goes to the new snapshot's page.
(function () {
  var form = document.getElementById('actions');
  if (!form) { return; }
  var token = document.getElementById('token');
  var label = document.getElementById('label');
  var status = document.getElementById('action-status');
  var buttons = form.querySelectorAll('button');
  try { token.value = sessionStorage.getItem('livecov-token') || ''; } catch (e) { /* private mode */ }

  function say(text, failed) {
    status.textContent = text;
    status.className = failed ? 'fail' : '';
  }

  function busy(on) {
    for (var i = 0; i < buttons.length; i++) { buttons[i].disabled = on; }
  }

  function take(reset) {
    if (reset && !window.confirm('Take a snapshot of ' + form.getAttribute('data-service') +
        ' and reset the counters of every live instance?')) {
      return;
    }
    try { sessionStorage.setItem('livecov-token', token.value); } catch (e) { /* private mode */ }
    var headers = { 'Content-Type': 'application/json' };
    if (token.value) { headers.Authorization = 'Bearer ' + token.value; }
    var body = label.value ? { label: label.value } : {};
    busy(true);
    say(reset ? 'Pulling and resetting the counters…' : 'Pulling the counters…', false);
    fetch(form.getAttribute('data-api') + (reset ? '?reset=true' : ''), {
      method: 'POST', headers: headers, body: JSON.stringify(body)
    }).then(function (r) {
      return r.json().then(function (j) { return { ok: r.ok, status: r.status, body: j }; },
        function () { return { ok: false, status: r.status, body: {} }; });
    }).then(function (r) {
      if (r.ok && r.body.id) {
        window.location.href = '/snapshots/' + r.body.id;
        return;
      }
      busy(false);
      var why = r.body.error || ('the server answered ' + r.status);
      if (r.status === 401) { why += ' (type the admin token above)'; }
      say('Failed: ' + why, true);
    }, function (e) {
      busy(false);
      say('Failed: the server did not answer (' + e + ')', true);
    });
  }

  document.getElementById('take-snapshot').addEventListener('click', function () { take(false); });
  document.getElementById('snapshot-reset').addEventListener('click', function () { take(true); });
  form.addEventListener('submit', function (e) { e.preventDefault(); take(false); });
})();
