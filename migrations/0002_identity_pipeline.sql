CREATE TABLE `write_guards` (
	`ok` integer NOT NULL,
	CONSTRAINT "stale_read" CHECK(ok = 1)
);
--> statement-breakpoint
ALTER TABLE `events` ADD `name` text;--> statement-breakpoint
ALTER TABLE `events` ADD `group_id` text;--> statement-breakpoint
ALTER TABLE `events` ADD `previous_id` text;--> statement-breakpoint
CREATE INDEX `profiles_name_lower_idx` ON `profiles` (lower("name"));