-- The async interop app (tests/interop/runtime-async.js), served with a 300 ms call
-- budget and a 64 MiB memory cap: slow calls wait without blocking, runaway calls fail
-- alone.
return function(app)
  app:set("paginate", false)
end
