/** Overview: events per day, profiles, identified share, top events, segment sizes. */
import { api } from "../api";
import { lastDays, num, pct, text } from "../format";
import { Link } from "../router";
import { Loaded, Section, useAsync } from "../ui";

/** Bars as SVG elements (never markup strings); each bar's tooltip is an SVG `<title>` text node. */
export function BarChart(props: { data: { label: string; value: number }[]; height?: number }) {
  const { data } = props;
  const h = props.height ?? 160;
  const w = Math.max(data.length * 22, 220);
  const max = Math.max(1, ...data.map((d) => d.value));
  const bw = w / Math.max(1, data.length);
  return (
    <svg class="chart" viewBox={`0 0 ${w} ${h + 20}`} role="img" aria-label="Events per day">
      <line x1="0" y1={String(h)} x2={String(w)} y2={String(h)} class="axis" />
      {data.map((d, i) => {
        const bh = Math.round((d.value / max) * (h - 10));
        return (
          <g>
            <rect x={String(i * bw + 2)} y={String(h - bh)} width={String(Math.max(1, bw - 4))} height={String(bh)}>
              <title>{`${d.label}: ${d.value.toLocaleString()}`}</title>
            </rect>
            {i % Math.ceil(data.length / 7) === 0 ? (
              <text
                x={String(i === 0 ? 2 : i * bw + bw / 2)}
                y={String(h + 14)}
                text-anchor={i === 0 ? "start" : "middle"}
              >
                {d.label.slice(5)}
              </text>
            ) : null}
          </g>
        );
      })}
    </svg>
  );
}

/** Horizontal bars with labels, for ranked lists. */
function Ranked(props: { rows: { label: string; value: number; href?: string }[] }) {
  const max = Math.max(1, ...props.rows.map((r) => r.value));
  if (props.rows.length === 0) return <p class="muted">Nothing yet.</p>;
  return (
    <table class="ranked">
      <tbody>
        {props.rows.map((r) => (
          <tr>
            <td class="label">
              {r.href ? <Link href={r.href}>{r.label}</Link> : <span title={r.label}>{r.label}</span>}
            </td>
            <td class="bar">
              <meter min={0} max={max} value={r.value} title={String(r.value)} />
            </td>
            <td class="n">{num(r.value)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function OverviewPage() {
  const overview = useAsync(() => api.overview(30), []);
  return (
    <>
      <h1>Overview</h1>
      <Loaded state={overview}>
        {(o) => (
          <>
            <div class="tiles">
              <div class="tile">
                <span class="n">{num(o.profiles)}</span>
                <span>profiles</span>
              </div>
              <div class="tile">
                <span class="n">{pct(o.identifiedProfiles, o.profiles)}</span>
                <span>identified ({num(o.identifiedProfiles)})</span>
              </div>
              <div class="tile">
                <span class="n">{num(o.events.total)}</span>
                <span>events, all time</span>
              </div>
            </div>
            <div class="grid2">
              <Section title="Events per day (30 days, UTC)">
                <BarChart data={lastDays(o.events.perDay)} />
              </Section>
              <Section title="Top events (30 days)">
                <Ranked rows={o.topEvents.map((e) => ({ label: text(e.event, 60), value: e.count }))} />
              </Section>
            </div>
            <Section title="Segment sizes">
              <Ranked
                rows={o.segments.slice(0, 15).map((s) => ({
                  label: text(s.name || s.key, 80),
                  value: s.members,
                  href: `/dashboard/segments/${encodeURIComponent(s.key)}`,
                }))}
              />
            </Section>
          </>
        )}
      </Loaded>
    </>
  );
}
