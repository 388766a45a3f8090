// The service page's buttons: a snapshot (or a snapshot and reset), and sessions started and
// stopped, through the API, with the admin token typed into the page; sessionStorage keeps it
// for this tab only. On success the browser goes to the new snapshot's page.
(function () {
  var form = document.getElementById('actions');
  if (!form) { return; }
  var token = document.getElementById('token');
  var label = document.getElementById('label');
  var selector = document.getElementById('selector');
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
        ' that ends this round and begins a new one? (No count is lost.)')) {
      return;
    }
    try { sessionStorage.setItem('livecov-token', token.value); } catch (e) { /* private mode */ }
    var headers = { 'Content-Type': 'application/json' };
    if (token.value) { headers.Authorization = 'Bearer ' + token.value; }
    var body = label.value ? { label: label.value } : {};
    if (selector && selector.value) { body.selector = selector.value; }
    busy(true);
    say(reset ? 'Ending the round…' : 'Pulling the counters…', false);
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

  // Sessions: start one by name, stop an open one (its snapshot's page follows).
  var sessions = document.getElementById('sessions');
  if (!sessions) { return; }
  var name = document.getElementById('session-name');
  var sessionStatus = document.getElementById('session-status');
  function post(url, body, done) {
    try { sessionStorage.setItem('livecov-token', token.value); } catch (e) { /* private mode */ }
    var headers = { 'Content-Type': 'application/json' };
    if (token.value) { headers.Authorization = 'Bearer ' + token.value; }
    sessionStatus.textContent = 'Asking the instances…';
    sessionStatus.className = '';
    fetch(url, { method: 'POST', headers: headers, body: JSON.stringify(body) }).then(function (r) {
      return r.json().then(function (j) { return { ok: r.ok, status: r.status, body: j }; },
        function () { return { ok: false, status: r.status, body: {} }; });
    }).then(function (r) {
      if (r.ok) { done(r.body); return; }
      var why = r.body.error || ('the server answered ' + r.status);
      if (r.status === 401) { why += ' (type the admin token above)'; }
      sessionStatus.textContent = 'Failed: ' + why;
      sessionStatus.className = 'fail';
    }, function (e) {
      sessionStatus.textContent = 'Failed: the server did not answer (' + e + ')';
      sessionStatus.className = 'fail';
    });
  }
  var api = sessions.getAttribute('data-api');
  document.getElementById('start-session').addEventListener('click', function () {
    if (!name.value) { sessionStatus.textContent = 'Name the session first.'; return; }
    post(api, { name: name.value }, function () { window.location.reload(); });
  });
  sessions.addEventListener('submit', function (e) {
    e.preventDefault();
    document.getElementById('start-session').click();
  });
  var stops = document.querySelectorAll('button.stop-session');
  for (var i = 0; i < stops.length; i++) {
    stops[i].addEventListener('click', function (e) {
      var n = e.target.getAttribute('data-name');
      var body = label.value ? { label: label.value } : {};
    if (selector && selector.value) { body.selector = selector.value; }
      post(api + '/' + encodeURIComponent(n) + '/stop', body, function (b) {
        window.location.href = '/snapshots/' + b.id;
      });
    });
  }
})();
