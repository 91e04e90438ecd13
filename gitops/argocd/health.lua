-- Argo CD health check for panthera.dev/PantheraPlatform. It reads only the status contract
-- (observedGeneration and the kstatus conditions Ready, Reconciling, Stalled), so it agrees with
-- `kubectl wait --for=condition=Ready`, Flux's kstatus checks and `panthera status`.
-- Install: see docs/gitops.md (argocd-cm, key resource.customizations.health.panthera.dev_PantheraPlatform).
local hs = {}

local function condition(status, type)
  if status == nil or status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == type then
      return c
    end
  end
  return nil
end

local function describe(c, fallback)
  if c == nil then
    return fallback
  end
  local reason = c.reason or ""
  local message = c.message or ""
  if reason ~= "" and message ~= "" then
    return reason .. ": " .. message
  end
  if message ~= "" then
    return message
  end
  if reason ~= "" then
    return reason
  end
  return fallback
end

local paused = obj.spec ~= nil and obj.spec.paused == true
if obj.metadata ~= nil and obj.metadata.annotations ~= nil
    and obj.metadata.annotations["panthera.dev/paused"] == "true" then
  paused = true
end
if paused then
  hs.status = "Suspended"
  hs.message = "reconciliation is paused (spec.paused or the panthera.dev/paused annotation)"
  return hs
end

local status = obj.status
if status == nil then
  hs.status = "Progressing"
  hs.message = "waiting for the Panthera operator to report status"
  return hs
end

local generation = nil
if obj.metadata ~= nil then
  generation = obj.metadata.generation
end
if generation ~= nil and status.observedGeneration ~= generation then
  hs.status = "Progressing"
  hs.message = "waiting for the operator to observe generation " .. tostring(generation)
  return hs
end

local stalled = condition(status, "Stalled")
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(stalled, "stalled")
  return hs
end

local ready = condition(status, "Ready")
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = describe(ready, "ready")
  return hs
end

hs.status = "Progressing"
hs.message = describe(condition(status, "Reconciling"), describe(ready, "reconciling"))
return hs
