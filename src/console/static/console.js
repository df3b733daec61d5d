// Ferry console: the throughput chart (uPlot). Points come with the page (data-samples) and then
// from the job's live stream (`point` events, seen here through htmx's sse extension).
(function () {
  'use strict';
  function chartOn(el) {
    var samples = JSON.parse(el.getAttribute('data-samples') || '[]');
    var xs = samples.map(function (p) {
      return p[0];
    });
    var ys = samples.map(function (p) {
      return p[1];
    });
    var plot = null;
    function draw() {
      if (xs.length === 0 || typeof uPlot === 'undefined') return;
      var width = Math.max(240, el.clientWidth || 600);
      if (!plot) {
        el.textContent = '';
        plot = new uPlot(
          {
            width: width,
            height: 180,
            scales: {
              x: { time: false },
              y: {
                range: function (u, min, max) {
                  return [0, Math.max(1, max) * 1.1];
                },
              },
            },
            axes: [{ label: 's' }, { label: 'MB/s' }],
            series: [{ label: 's' }, { label: 'MB/s', stroke: '#2563eb', fill: 'rgba(37,99,235,0.12)' }],
            legend: { show: false },
          },
          [xs, ys],
          el,
        );
      } else {
        plot.setData([xs, ys]);
      }
    }
    draw();
    // The chart element has sse-swap="point": take the message before htmx would swap it in.
    {
      el.addEventListener('htmx:sseBeforeMessage', function (ev) {
        var msg = ev.detail;
        if (!msg || msg.type !== 'point') return;
        ev.preventDefault(); // data, not markup
        JSON.parse(msg.data).forEach(function (p) {
          xs.push(p[0]);
          ys.push(p[1]);
        });
        draw();
      });
    }
    window.addEventListener('resize', function () {
      if (plot) plot.setSize({ width: Math.max(240, el.clientWidth), height: 180 });
    });
  }
  document.addEventListener('DOMContentLoaded', function () {
    var el = document.getElementById('rate-chart');
    if (el) chartOn(el);
  });
})();
