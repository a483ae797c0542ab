CREATE TABLE `recent_events` (
	`seq` integer PRIMARY KEY NOT NULL,
	`keys` text NOT NULL
);
--> statement-breakpoint
DROP INDEX `contacts_last_seen_idx`;--> statement-breakpoint
ALTER TABLE `profiles` ADD `last_seen_sort` integer;--> statement-breakpoint
CREATE INDEX `contacts_last_seen_idx` ON `profiles` (`merged_into`,(CASE WHEN "last_seen_sort" IS NULL THEN 0 ELSE "last_seen_sort" END),`id`);