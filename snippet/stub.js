// The optional inline stub. Site owners paste this line before the snippet's <script> tag so that
// calls made before the snippet has loaded are queued in `tessera.q` and replayed by it, in order.
// ES5 on purpose: it runs unbundled, in whatever browser the page gets.
// biome-ignore format: pasted into pages as one line
// biome-ignore lint/complexity/useArrowFunction: ES5
// biome-ignore lint/complexity/noArguments: ES5 has no rest parameters
(function(t){t=window.tessera=window.tessera||{q:[]};"page track identify alias group reset consent".split(" ").forEach(function(m){t[m]=t[m]||function(){t.q.push([m,[].slice.call(arguments)])}})})();
