-- The object key of the product's image in the bucket (products/{id}/{uuid}); NULL without one.
-- The bytes live in object storage only: browsers upload them there with a presigned POST.
ALTER TABLE products ADD COLUMN image_key TEXT;
