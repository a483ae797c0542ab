ALTER TABLE `profile_merges` ADD `actor` text;--> statement-breakpoint
CREATE INDEX `deliveries_profile_idx` ON `deliveries` (payload ->> '$.data.profile.id');