-- Fewer D1 rows written per event (issue 9).
--
-- 1. Event counters move into the profile row (profiles.counters, segments/counters.ts). Every
--    event already rewrites its profile row, so counting it there writes no extra row; the
--    event_counters table wrote one per counted event, three on a new day. Copied as
--    { matcher: [[day, count, last_at], ...] } per profile. On a very large database run this
--    UPDATE in ranges of profile ids (D1 limits a statement to 30 s).
ALTER TABLE `profiles` ADD `counters` text DEFAULT '{}' NOT NULL;
--> statement-breakpoint
UPDATE `profiles` SET `counters` = x.`doc` FROM (
  SELECT `profile_id`, json_group_object(`matcher`, json(`buckets`)) AS `doc` FROM (
    SELECT `profile_id`, `matcher`, json_group_array(json_array(`day`, `count`, `last_at`)) AS `buckets`
    FROM `event_counters` GROUP BY `profile_id`, `matcher`
  ) GROUP BY `profile_id`
) AS x WHERE x.`profile_id` = `profiles`.`id`;
--> statement-breakpoint
DROP TABLE `event_counters`;
--> statement-breakpoint
-- 2. The `events` total is the sum of its days from now on (stats/index.ts): the pipeline writes
--    one metrics row per batch for it, not two.
DELETE FROM `metrics` WHERE `name` = 'events' AND `day` = 0;
--> statement-breakpoint
-- 3. metrics becomes WITHOUT ROWID, clustered on its key (name, day): a new day's row is one
--    entry instead of a row and its primary-key index entry. Same columns and key, so drizzle's
--    snapshot still describes it.
CREATE TABLE `metrics_new` (
	`name` text NOT NULL,
	`day` integer NOT NULL,
	`value` integer NOT NULL,
	PRIMARY KEY(`name`, `day`)
) WITHOUT ROWID;
--> statement-breakpoint
INSERT INTO `metrics_new` (`name`, `day`, `value`) SELECT `name`, `day`, `value` FROM `metrics` ORDER BY `name`, `day`;
--> statement-breakpoint
DROP TABLE `metrics`;
--> statement-breakpoint
ALTER TABLE `metrics_new` RENAME TO `metrics`;
