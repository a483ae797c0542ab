CREATE TABLE `dead_letters` (
	`id` text PRIMARY KEY NOT NULL,
	`queue` text NOT NULL,
	`body` text NOT NULL,
	`created_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `dead_letters_created_idx` ON `dead_letters` (`created_at`);--> statement-breakpoint
CREATE TABLE `deliveries` (
	`id` text PRIMARY KEY NOT NULL,
	`destination_id` text NOT NULL,
	`type` text NOT NULL,
	`payload` text NOT NULL,
	`status` text NOT NULL,
	`attempts` integer DEFAULT 0 NOT NULL,
	`last_status` integer,
	`last_error` text,
	`next_attempt_at` integer,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `deliveries_destination_idx` ON `deliveries` (`destination_id`,`created_at`);--> statement-breakpoint
CREATE INDEX `deliveries_due_idx` ON `deliveries` (`status`,`next_attempt_at`);--> statement-breakpoint
CREATE TABLE `destinations` (
	`id` text PRIMARY KEY NOT NULL,
	`name` text NOT NULL,
	`url` text NOT NULL,
	`secret` text NOT NULL,
	`segments` text DEFAULT '[]' NOT NULL,
	`events` text DEFAULT '[]' NOT NULL,
	`enabled` integer DEFAULT true NOT NULL,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `event_counters` (
	`profile_id` text NOT NULL,
	`matcher` text NOT NULL,
	`day` integer NOT NULL,
	`count` integer NOT NULL,
	`last_at` integer NOT NULL,
	PRIMARY KEY(`profile_id`, `matcher`, `day`)
);
--> statement-breakpoint
CREATE TABLE `events` (
	`site_id` text NOT NULL,
	`message_id` text NOT NULL,
	`profile_id` text NOT NULL,
	`type` text NOT NULL,
	`event` text,
	`properties` text DEFAULT '{}' NOT NULL,
	`traits` text,
	`context` text DEFAULT '{}' NOT NULL,
	`user_id` text,
	`anonymous_id` text,
	`timestamp` integer NOT NULL,
	`received_at` integer NOT NULL,
	`flags` text,
	PRIMARY KEY(`site_id`, `message_id`)
);
--> statement-breakpoint
CREATE INDEX `events_profile_time_idx` ON `events` (`profile_id`,`timestamp`);--> statement-breakpoint
CREATE TABLE `groups` (
	`id` text PRIMARY KEY NOT NULL,
	`traits` text DEFAULT '{}' NOT NULL,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `identities` (
	`type` text NOT NULL,
	`value` text NOT NULL,
	`profile_id` text NOT NULL,
	`source_message_id` text,
	`created_at` integer NOT NULL,
	PRIMARY KEY(`type`, `value`)
);
--> statement-breakpoint
CREATE INDEX `identities_profile_idx` ON `identities` (`profile_id`);--> statement-breakpoint
CREATE INDEX `identities_value_idx` ON `identities` (`value`);--> statement-breakpoint
CREATE TABLE `identity_warnings` (
	`id` text PRIMARY KEY NOT NULL,
	`profile_id` text,
	`message_id` text,
	`identifier_type` text NOT NULL,
	`identifier_value` text NOT NULL,
	`reason` text NOT NULL,
	`created_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `identity_warnings_profile_idx` ON `identity_warnings` (`profile_id`);--> statement-breakpoint
CREATE TABLE `membership_changes` (
	`id` text PRIMARY KEY NOT NULL,
	`segment_key` text NOT NULL,
	`profile_id` text NOT NULL,
	`change` text NOT NULL,
	`at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `membership_changes_segment_idx` ON `membership_changes` (`segment_key`,`at`);--> statement-breakpoint
CREATE INDEX `membership_changes_profile_idx` ON `membership_changes` (`profile_id`,`at`);--> statement-breakpoint
CREATE TABLE `memberships` (
	`segment_key` text NOT NULL,
	`profile_id` text NOT NULL,
	`entered_at` integer NOT NULL,
	`next_check_at` integer,
	PRIMARY KEY(`segment_key`, `profile_id`)
);
--> statement-breakpoint
CREATE INDEX `memberships_profile_idx` ON `memberships` (`profile_id`);--> statement-breakpoint
CREATE INDEX `memberships_next_check_idx` ON `memberships` (`next_check_at`);--> statement-breakpoint
CREATE TABLE `metrics` (
	`name` text NOT NULL,
	`day` integer NOT NULL,
	`value` integer NOT NULL,
	PRIMARY KEY(`name`, `day`)
);
--> statement-breakpoint
CREATE TABLE `notes` (
	`id` text PRIMARY KEY NOT NULL,
	`profile_id` text NOT NULL,
	`author_id` text,
	`body` text NOT NULL,
	`created_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `notes_profile_idx` ON `notes` (`profile_id`,`created_at`);--> statement-breakpoint
CREATE TABLE `profile_merges` (
	`id` text PRIMARY KEY NOT NULL,
	`winner_id` text NOT NULL,
	`loser_id` text NOT NULL,
	`message_id` text,
	`identifier_type` text,
	`identifier_value` text,
	`snapshot` text NOT NULL,
	`created_at` integer NOT NULL,
	`undone_at` integer
);
--> statement-breakpoint
CREATE INDEX `profile_merges_winner_idx` ON `profile_merges` (`winner_id`);--> statement-breakpoint
CREATE TABLE `profiles` (
	`id` text PRIMARY KEY NOT NULL,
	`merged_into` text,
	`traits` text DEFAULT '{}' NOT NULL,
	`trait_meta` text DEFAULT '{}' NOT NULL,
	`computed` text DEFAULT '{}' NOT NULL,
	`email` text,
	`name` text,
	`identified` integer DEFAULT false NOT NULL,
	`company_id` text,
	`lifecycle_stage` text,
	`owner_id` text,
	`tags` text DEFAULT '[]' NOT NULL,
	`merge_count` integer DEFAULT 0 NOT NULL,
	`first_seen_at` integer,
	`last_seen_at` integer,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `profiles_last_seen_idx` ON `profiles` (`merged_into`,`last_seen_at`);--> statement-breakpoint
CREATE INDEX `profiles_email_idx` ON `profiles` (`email`);--> statement-breakpoint
CREATE INDEX `profiles_name_idx` ON `profiles` (`name`);--> statement-breakpoint
CREATE INDEX `profiles_stage_idx` ON `profiles` (`lifecycle_stage`);--> statement-breakpoint
CREATE INDEX `profiles_owner_idx` ON `profiles` (`owner_id`);--> statement-breakpoint
CREATE TABLE `rejected_events` (
	`id` text PRIMARY KEY NOT NULL,
	`site_id` text,
	`reason` text NOT NULL,
	`payload` text NOT NULL,
	`received_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `rejected_events_received_idx` ON `rejected_events` (`received_at`);--> statement-breakpoint
CREATE TABLE `segment_checks` (
	`segment_key` text NOT NULL,
	`profile_id` text NOT NULL,
	`check_at` integer NOT NULL,
	PRIMARY KEY(`segment_key`, `profile_id`)
);
--> statement-breakpoint
CREATE INDEX `segment_checks_due_idx` ON `segment_checks` (`check_at`);--> statement-breakpoint
CREATE TABLE `segments` (
	`key` text PRIMARY KEY NOT NULL,
	`name` text NOT NULL,
	`description` text,
	`rule` text NOT NULL,
	`dependencies` text DEFAULT '{}' NOT NULL,
	`public` integer DEFAULT false NOT NULL,
	`version` integer DEFAULT 1 NOT NULL,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `sessions` (
	`id` text PRIMARY KEY NOT NULL,
	`user_id` text NOT NULL,
	`csrf_token` text NOT NULL,
	`expires_at` integer NOT NULL,
	`created_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `sessions_user_idx` ON `sessions` (`user_id`);--> statement-breakpoint
CREATE TABLE `sites` (
	`id` text PRIMARY KEY NOT NULL,
	`name` text NOT NULL,
	`write_key` text NOT NULL,
	`allowed_origins` text DEFAULT '[]' NOT NULL,
	`origin_url` text,
	`identity_verification` integer DEFAULT false NOT NULL,
	`verification_secret` text NOT NULL,
	`identity_policy` text DEFAULT '{}' NOT NULL,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `sites_write_key_uq` ON `sites` (`write_key`);--> statement-breakpoint
CREATE TABLE `slots` (
	`key` text PRIMARY KEY NOT NULL,
	`default_content` text NOT NULL,
	`rules` text DEFAULT '[]' NOT NULL,
	`holdout` real DEFAULT 0 NOT NULL,
	`starts_at` integer,
	`ends_at` integer,
	`goal_event` text,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `suppressions` (
	`hash` text PRIMARY KEY NOT NULL,
	`created_at` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `tasks` (
	`id` text PRIMARY KEY NOT NULL,
	`profile_id` text NOT NULL,
	`title` text NOT NULL,
	`due_at` integer,
	`done` integer DEFAULT false NOT NULL,
	`created_by` text,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `tasks_profile_idx` ON `tasks` (`profile_id`);--> statement-breakpoint
CREATE TABLE `users` (
	`id` text PRIMARY KEY NOT NULL,
	`email` text NOT NULL,
	`name` text,
	`role` text NOT NULL,
	`password_hash` text NOT NULL,
	`password_salt` text NOT NULL,
	`failed_logins` integer DEFAULT 0 NOT NULL,
	`locked_until` integer,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `users_email_uq` ON `users` (`email`);