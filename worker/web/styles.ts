/**
 * The dashboard's stylesheet, served at /dashboard/app.css (the CSP allows only same-origin
 * styles, so no inline style attributes or <style> blocks). Plain CSS, no framework: a top bar
 * that scrolls sideways on narrow screens, and grids that fold to one column below 900 px.
 */
export const dashboardCss = `
:root{--fg:#1d2433;--muted:#677089;--line:#e3e6ef;--bg:#f6f7fb;--card:#fff;--accent:#3548d4;--accent-bg:#eef0ff;--danger:#c0392b;--ok:#1e8e3e;--warn:#b7791f;font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;font-size:15px;color:var(--fg);background:var(--bg)}
*{box-sizing:border-box}
body{margin:0;line-height:1.45}
a{color:var(--accent);text-decoration:none}a:hover{text-decoration:underline}
h1{font-size:24px;margin:0 0 16px}h2{font-size:16px;margin:0 0 12px}
code,pre,.code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:13px}
code{background:#f0f2f7;padding:1px 5px;border-radius:4px;word-break:break-all}
pre.json{background:#0f1422;color:#e4e8f5;padding:12px;border-radius:8px;overflow:auto;max-height:420px;white-space:pre-wrap;word-break:break-word}
label{display:block;margin:12px 0 4px;font-size:13px;font-weight:600;color:#3a4259}
label.check,label.not{display:inline-flex;gap:6px;align-items:center;font-weight:400;margin:8px 0}
input,select,textarea{font:inherit;padding:8px 10px;border:1px solid #c8ccd8;border-radius:8px;background:#fff;color:inherit;max-width:100%}
input,textarea{width:100%}
input[type=checkbox]{width:auto;padding:0}
input[type=file]{border:1px dashed #c8ccd8;padding:16px}
textarea.code{font-size:13px}
input:focus,select:focus,textarea:focus,button:focus-visible,a:focus-visible{outline:2px solid var(--accent);outline-offset:1px}
button,.button{display:inline-block;font:inherit;font-size:14px;padding:8px 14px;border:1px solid var(--accent);border-radius:8px;background:var(--accent);color:#fff;cursor:pointer;text-decoration:none;white-space:nowrap}
button:hover,.button:hover{filter:brightness(1.08);text-decoration:none}
button:disabled{opacity:.55;cursor:default}
button.secondary,.button.secondary{background:#fff;color:var(--accent)}
button.danger{background:#fff;color:var(--danger);border-color:var(--danger)}
button.small,.button.small{padding:4px 10px;font-size:13px}
button.link{background:none;border:0;color:var(--accent);padding:2px 6px}
fieldset{border:0;padding:0;margin:0;min-width:0}
legend{font-size:13px;font-weight:600;color:#3a4259;margin-top:12px}
.muted{color:var(--muted)}.meta{color:var(--muted);font-size:13px;margin:4px 0}
.error{color:var(--danger);background:#fdecea;border-radius:8px;padding:8px 12px}
.badge{display:inline-block;font-size:12px;padding:1px 8px;border-radius:10px;background:#eef0f6;color:#3a4259;margin-left:6px}
.badge.live{background:#e6f4ea;color:var(--ok)}.badge.entered,.badge.delivered{background:#e6f4ea;color:var(--ok)}
.badge.exited,.badge.failed{background:#fdecea;color:var(--danger)}.badge.retrying,.badge.pending{background:#fff4e0;color:var(--warn)}
.tag{display:inline-block;font-size:12px;padding:1px 8px;margin:1px 4px 1px 0;border-radius:10px;background:var(--accent-bg);color:var(--accent)}
.topbar{position:sticky;top:0;z-index:5;display:flex;align-items:center;gap:16px;padding:0 20px;height:56px;background:#141a2e;color:#fff}
.topbar a{color:#c9cfe6}.brand{font-weight:700;font-size:18px;color:#fff!important;letter-spacing:.02em}
.nav{display:flex;gap:4px;flex:1;overflow-x:auto;scrollbar-width:none}
.nav a{padding:6px 10px;border-radius:6px;white-space:nowrap}.nav a:hover{background:#232b45;text-decoration:none}
.nav a.active{background:#2c3658;color:#fff}
.who{display:flex;align-items:center;gap:10px;font-size:13px;white-space:nowrap}
.who .badge{background:#2c3658;color:#c9cfe6}
.content{max-width:1240px;margin:0 auto;padding:24px 20px 60px}
.card{background:var(--card);border:1px solid var(--line);border-radius:12px;padding:18px;margin-bottom:16px}
.card-head{display:flex;justify-content:space-between;align-items:center;gap:8px}
.page-head{display:flex;justify-content:space-between;align-items:flex-start;gap:12px;flex-wrap:wrap;margin-bottom:8px}
.actions{display:flex;gap:8px;align-items:center;flex-wrap:wrap;margin-top:12px}.page-head .actions,.card-head .actions{margin-top:0}
.crumbs{margin:0 0 4px;font-size:13px}
.row{display:flex;gap:8px;align-items:center;flex-wrap:wrap}.row>input:not([type=checkbox]),.row>textarea{flex:1;min-width:140px;width:auto}
.spacer{flex:1}
.grid2{display:grid;grid-template-columns:1fr 1fr;gap:0 16px}.grid3{display:grid;grid-template-columns:repeat(3,1fr);gap:12px}
.grid-contact{display:grid;grid-template-columns:minmax(0,5fr) minmax(0,7fr);gap:16px}
.tiles{display:grid;grid-template-columns:repeat(auto-fit,minmax(180px,1fr));gap:12px;margin-bottom:16px}
.tile{background:var(--card);border:1px solid var(--line);border-radius:12px;padding:16px;display:flex;flex-direction:column}
.tile .n{font-size:26px;font-weight:700}.tile span:last-child{color:var(--muted);font-size:13px}
.table-wrap{overflow-x:auto;background:var(--card);border:1px solid var(--line);border-radius:12px;margin-bottom:12px}
table{border-collapse:collapse;width:100%}
table.list th,table.list td{text-align:left;padding:9px 12px;border-bottom:1px solid var(--line);vertical-align:top}
table.list th{white-space:nowrap}
/* break-word (not anywhere) keeps short values whole; cells show at most a few hundred characters, and the wrapper scrolls sideways. */
table.list td{overflow-wrap:break-word}
table.list thead th{font-size:12px;text-transform:uppercase;letter-spacing:.04em;color:var(--muted);background:#fafbfd}
table.list tr:last-child td{border-bottom:0}
.card table.list td,.card table.list th{padding:7px 6px}
th.n,td.n{text-align:right;font-variant-numeric:tabular-nums}
table.kv th{text-align:left;font-weight:600;font-size:13px;color:#3a4259;padding:5px 10px 5px 0;width:36%;vertical-align:top;overflow-wrap:anywhere}
table.kv td{padding:5px 0;overflow-wrap:anywhere}table.kv td.src{color:var(--muted);font-size:12px;text-align:right;white-space:nowrap;padding-left:8px}
h3{font-size:13px;margin:12px 0 4px}
table.import select{margin-top:4px;font-size:12px;padding:4px}
tr.bad td{background:#fff5f4}
.ranked td{padding:4px 6px}.ranked .label{width:40%;overflow-wrap:anywhere}.ranked .bar{width:45%}.ranked meter{width:100%;height:14px}
.chart{width:100%;height:auto;max-height:240px}.chart rect{fill:var(--accent)}.chart rect:hover{fill:#6576f0}
.chart .axis{stroke:var(--line)}.chart text{font-size:10px;fill:var(--muted)}
.filters{display:flex;flex-wrap:wrap;gap:8px;margin:8px 0 14px}.filters input[type=search]{flex:3 1 300px;min-width:220px;width:auto}
.filters input{flex:1;min-width:110px;width:auto}
.pager{display:flex;gap:8px;justify-content:flex-end;margin:8px 0}
.form{max-width:760px}
.segment-edit{display:grid;grid-template-columns:minmax(0,1fr) 280px;gap:16px;align-items:start}
.segment-edit .form{max-width:none}
.preview{position:sticky;top:72px}.preview .big{font-size:15px}.preview-count{font-size:32px;font-weight:700;display:block}.stale{opacity:.5}
.tabs{display:flex;gap:4px;align-items:center;border-bottom:1px solid var(--line);margin-bottom:10px}
.tabs button{background:none;color:var(--muted);border:0;border-bottom:2px solid transparent;border-radius:0}
.tabs button[aria-selected=true]{color:var(--accent);border-bottom-color:var(--accent)}
.tabs .muted{margin-left:auto;font-size:13px}
.group{border-left:3px solid var(--accent-bg);padding:6px 0 6px 12px;margin:6px 0}
.cond{background:#fafbfd;border:1px solid var(--line);border-radius:8px;padding:6px 10px;margin:6px 0}
.cond.negated{border-color:#f0c2bd;background:#fffafa}
.cond .row>input{min-width:120px}.cond input.value{max-width:220px}.cond input.count{width:80px;flex:0 0 80px;min-width:0}.cond input.duration{width:80px;flex:0 0 80px;min-width:0}
.event-cond{flex:1}.filters-list .row{margin:4px 0 0 12px}
.row.add{margin-top:6px}
.slot-rules{padding-left:20px}.content-field label:first-child{margin-top:6px}
ul.plain,ul.notes,ul.tasks,ul.events{list-style:none;padding:0;margin:0}
ul.plain li{padding:3px 0}
ul.notes li{border-bottom:1px solid var(--line);padding:8px 0}.note-body{margin:0;white-space:pre-wrap;overflow-wrap:anywhere}
.note-form{margin-bottom:10px}.note-form button{margin-top:6px}
ul.tasks li{display:flex;gap:8px;align-items:center;flex-wrap:wrap;padding:4px 0}ul.tasks li label{margin:0;font-weight:400;font-size:14px;color:inherit;display:inline}
ul.tasks li.done label{text-decoration:line-through;color:var(--muted)}
.due{font-size:12px;color:var(--muted)}.due.overdue{color:var(--danger)}
form.inline{display:flex;gap:8px;flex-wrap:wrap;align-items:center}form.inline input{flex:1;min-width:140px;width:auto}
ul.events li{border-bottom:1px solid var(--line);padding:6px 0}ul.events li:last-child{border-bottom:0}
ul.events summary{cursor:pointer;overflow-wrap:anywhere}ul.events time{color:var(--muted);font-size:13px;margin-left:6px}
.type{display:inline-block;min-width:64px;font-size:12px;text-align:center;border-radius:6px;padding:0 6px;background:#eef0f6}
.t-track{background:#eef0ff;color:var(--accent)}.t-page{background:#e6f4ea;color:var(--ok)}.t-identify{background:#fff4e0;color:var(--warn)}
.secret{border-color:var(--warn);background:#fffaf0}
.facts{display:grid;grid-template-columns:max-content 1fr;gap:6px 14px;margin:0 0 8px}.facts dt{font-size:13px;font-weight:600;color:#3a4259}.facts dd{margin:0}
.toast{position:fixed;bottom:20px;left:50%;transform:translateX(-50%);background:#141a2e;color:#fff;padding:10px 18px;border-radius:8px;z-index:10}
details.raw{margin-top:12px}
.signin{max-width:420px;margin:10vh auto;padding:32px}
.signin button[type=submit]{margin-top:20px;width:100%;padding:11px}
.boot{text-align:center;margin-top:20vh}
@media (max-width:900px){
  .grid2,.grid-contact,.segment-edit{grid-template-columns:1fr}
  .preview{position:sticky;bottom:0;top:auto;z-index:4;box-shadow:0 -4px 16px #0002;padding:10px 16px}
  .preview h2,.preview ul{display:none}.preview .preview-count{display:inline;font-size:22px;margin-right:4px}.preview p{margin:0}
  .topbar{height:auto;flex-wrap:wrap;padding:8px 14px;gap:8px}.nav{order:3;flex-basis:100%}
  .content{padding:16px 12px 40px}
}
@media (max-width:560px){.grid3{grid-template-columns:1fr}.who span{display:none}}
`;
