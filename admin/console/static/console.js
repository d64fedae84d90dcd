// Draws the overview's charts from /api/overview with Chart.js (served by the console, from
// Debian's libjs-chart.js). No inline script anywhere: the CSP allows only this file.
(function () {
  const series = document.getElementById('chart-series');
  const actions = document.getElementById('chart-actions');
  if (!series || typeof Chart === 'undefined') return;
  fetch('/api/overview?range=' + encodeURIComponent(series.dataset.range), { credentials: 'same-origin' })
    .then((r) => r.json())
    .then((o) => {
      const labels = o.series.map((p) => new Date(p.hour).toISOString().slice(5, 16).replace('T', ' '));
      new Chart(series, {
        type: 'line',
        data: { labels, datasets: [
          { label: 'transactions', data: o.series.map((p) => p.count), borderColor: '#2e86c1', tension: 0.2 },
          { label: 'blocked', data: o.series.map((p) => p.blocked), borderColor: '#c0392b', tension: 0.2 } ] },
        options: { animation: false, plugins: { title: { display: true, text: 'Per hour' } } }
      });
      const keys = Object.keys(o.actions);
      new Chart(actions, {
        type: 'bar',
        data: { labels: keys, datasets: [{ label: 'transactions by action', data: keys.map((k) => o.actions[k]),
          backgroundColor: keys.map((k) => ({ block: '#c0392b', warn: '#d68910', error: '#7f8c8d' }[k] || '#2e86c1')) }] },
        options: { animation: false, plugins: { legend: { display: false }, title: { display: true, text: 'By action' } } }
      });
      document.body.dataset.charts = 'drawn';
    });
})();
