-- profile_tags mirrors profiles.tags (one row per tag of a live profile) for the contacts list's
-- ?tag= filter (crm/list-sql.ts). Triggers keep it exact whoever writes profiles: CRM edits, the
-- pipeline's merges (tags united, loser marked merged), unmerge, erasure. They fire only when
-- tags or merged_into actually change, so ordinary event writes pay nothing.
CREATE TRIGGER `profile_tags_on_insert` AFTER INSERT ON `profiles`
WHEN NEW.merged_into IS NULL AND NEW.tags <> '[]'
BEGIN
  INSERT OR IGNORE INTO `profile_tags` (`tag`, `profile_id`)
  SELECT j.value, NEW.id FROM json_each(CASE WHEN json_valid(NEW.tags) THEN NEW.tags ELSE '[]' END) AS j
  WHERE j.type = 'text';
END;
--> statement-breakpoint
CREATE TRIGGER `profile_tags_on_update` AFTER UPDATE OF `tags`, `merged_into` ON `profiles`
WHEN OLD.tags IS NOT NEW.tags OR OLD.merged_into IS NOT NEW.merged_into
BEGIN
  DELETE FROM `profile_tags` WHERE `profile_id` = NEW.id;
  INSERT OR IGNORE INTO `profile_tags` (`tag`, `profile_id`)
  SELECT j.value, NEW.id FROM json_each(CASE WHEN json_valid(NEW.tags) THEN NEW.tags ELSE '[]' END) AS j
  WHERE j.type = 'text' AND NEW.merged_into IS NULL;
END;
--> statement-breakpoint
CREATE TRIGGER `profile_tags_on_delete` AFTER DELETE ON `profiles`
BEGIN
  DELETE FROM `profile_tags` WHERE `profile_id` = OLD.id;
END;
