DROP INDEX `profiles_last_seen_idx`;--> statement-breakpoint
-- Running totals read by /api/stats (stats/index.ts), kept by every writer that creates, merges,
-- unmerges, erases or identifies a profile (stats/metrics.ts `withProfileTotals`); counted once here.
INSERT INTO `metrics` (`name`, `day`, `value`)
SELECT 'profiles', 0, count(*) FROM `profiles` WHERE `merged_into` IS NULL
ON CONFLICT (`name`, `day`) DO UPDATE SET `value` = excluded.`value`;
--> statement-breakpoint
INSERT INTO `metrics` (`name`, `day`, `value`)
SELECT 'identified_profiles', 0, count(*) FROM `profiles` WHERE `merged_into` IS NULL AND `identified` = 1
ON CONFLICT (`name`, `day`) DO UPDATE SET `value` = excluded.`value`;
