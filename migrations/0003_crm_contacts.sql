CREATE TABLE `imports` (
	`id` text PRIMARY KEY NOT NULL,
	`site_id` text NOT NULL,
	`created_by` text,
	`total_rows` integer NOT NULL,
	`accepted` integer NOT NULL,
	`rejected_count` integer NOT NULL,
	`rejected` text DEFAULT '[]' NOT NULL,
	`created` integer,
	`merged` integer,
	`completed_at` integer,
	`created_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `imports_created_idx` ON `imports` (`created_at`);--> statement-breakpoint
CREATE TABLE `profile_tags` (
	`tag` text NOT NULL,
	`profile_id` text NOT NULL,
	PRIMARY KEY(`tag`, `profile_id`)
);
--> statement-breakpoint
CREATE INDEX `profile_tags_profile_idx` ON `profile_tags` (`profile_id`);--> statement-breakpoint
CREATE INDEX `contacts_last_seen_idx` ON `profiles` (`merged_into`,(CASE WHEN "last_seen_at" IS NULL THEN 0 ELSE "last_seen_at" END),`id`);--> statement-breakpoint
CREATE INDEX `contacts_created_idx` ON `profiles` (`merged_into`,`created_at`,`id`);--> statement-breakpoint
CREATE INDEX `contacts_name_idx` ON `profiles` (`merged_into`,("name" IS NULL AND "email" IS NULL),(CASE WHEN "name" IS NOT NULL THEN lower("name") WHEN "email" IS NOT NULL THEN lower("email") ELSE '' END),`id`);