CREATE TABLE `profile_traits` (
	`profile_id` text NOT NULL,
	`key` text NOT NULL,
	`type` text NOT NULL,
	`value_text` text,
	`value_num` numeric,
	PRIMARY KEY(`profile_id`, `key`)
);
--> statement-breakpoint
CREATE INDEX `profile_traits_text_idx` ON `profile_traits` (`key`,`value_text`,`profile_id`);--> statement-breakpoint
CREATE INDEX `profile_traits_num_idx` ON `profile_traits` (`key`,`type`,`value_num`,`profile_id`);