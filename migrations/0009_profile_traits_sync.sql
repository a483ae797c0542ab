-- profile_traits mirrors the non-null top-level traits of live profiles (segments/sql.ts reads it
-- for trait conditions). Triggers keep it exact whoever writes profiles: the pipeline's identify,
-- merges (the loser's rows go, the winner's new traits are written), unmerge, CRM edits, erasure.
-- They fire only when traits or merged_into change, so page views and tracks pay nothing, and an
-- identify rewrites only the keys whose value changed. value_num of a string is its epoch ms when
-- it reads as an ISO date, with the exact expression the JSON fallback in segments/sql.ts uses.
CREATE TRIGGER `profile_traits_on_insert` AFTER INSERT ON `profiles`
WHEN NEW.merged_into IS NULL AND NEW.traits <> '{}'
BEGIN
  INSERT OR REPLACE INTO `profile_traits` (`profile_id`, `key`, `type`, `value_text`, `value_num`)
  SELECT NEW.id, j.key, j.type,
    CASE WHEN j.type = 'text' THEN j.value END,
    CASE WHEN j.type IN ('integer', 'real') THEN j.value
      WHEN j.type = 'text' AND j.value GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*' THEN round(unixepoch(j.value, 'subsec') * 1000) END
  FROM json_each(CASE WHEN json_type(NEW.traits) = 'object' THEN NEW.traits ELSE '{}' END) AS j
  WHERE j.type <> 'null';
END;
--> statement-breakpoint
CREATE TRIGGER `profile_traits_on_update` AFTER UPDATE OF `traits`, `merged_into` ON `profiles`
WHEN OLD.traits IS NOT NEW.traits OR OLD.merged_into IS NOT NEW.merged_into
BEGIN
  DELETE FROM `profile_traits` WHERE `profile_id` = NEW.id AND (NEW.merged_into IS NOT NULL OR `key` NOT IN (
    SELECT j.key FROM json_each(CASE WHEN json_type(NEW.traits) = 'object' THEN NEW.traits ELSE '{}' END) AS j
    WHERE j.type <> 'null'));
  INSERT OR REPLACE INTO `profile_traits` (`profile_id`, `key`, `type`, `value_text`, `value_num`)
  SELECT NEW.id, r.k, r.type, r.vt, r.vn FROM (
    SELECT j.key AS k, j.type AS type,
      CASE WHEN j.type = 'text' THEN j.value END AS vt,
      CASE WHEN j.type IN ('integer', 'real') THEN j.value
        WHEN j.type = 'text' AND j.value GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*' THEN round(unixepoch(j.value, 'subsec') * 1000) END AS vn
    FROM json_each(CASE WHEN json_type(NEW.traits) = 'object' THEN NEW.traits ELSE '{}' END) AS j
    WHERE j.type <> 'null'
  ) AS r
  WHERE NEW.merged_into IS NULL AND NOT EXISTS (
    SELECT 1 FROM `profile_traits` t WHERE t.profile_id = NEW.id AND t.key = r.k AND t.type = r.type
      AND t.value_text IS r.vt AND t.value_num IS r.vn);
END;
--> statement-breakpoint
CREATE TRIGGER `profile_traits_on_delete` AFTER DELETE ON `profiles`
BEGIN
  DELETE FROM `profile_traits` WHERE `profile_id` = OLD.id;
END;
--> statement-breakpoint
INSERT OR REPLACE INTO `profile_traits` (`profile_id`, `key`, `type`, `value_text`, `value_num`)
SELECT p.id, j.key, j.type,
  CASE WHEN j.type = 'text' THEN j.value END,
  CASE WHEN j.type IN ('integer', 'real') THEN j.value
    WHEN j.type = 'text' AND j.value GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*' THEN round(unixepoch(j.value, 'subsec') * 1000) END
FROM `profiles` p, json_each(CASE WHEN json_type(p.traits) = 'object' THEN p.traits ELSE '{}' END) AS j
WHERE p.merged_into IS NULL AND j.type <> 'null';
