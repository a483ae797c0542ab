ALTER TABLE `sites` ADD `proxy_host` text;--> statement-breakpoint
CREATE UNIQUE INDEX `sites_proxy_host_uq` ON `sites` (`proxy_host`);