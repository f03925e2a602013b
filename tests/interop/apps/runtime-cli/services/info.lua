-- What the app was configured with, after one internal call (a debug line under
-- PLUME_DEBUG=feathers).
return {
  setup = function(self, app)
    self.app = app
  end,
  find = function(self)
    local app = self.app
    app:service("slow"):find({ query = { ms = 0 } })
    return {
      env = app:get("env"),
      port = app:get("port"),
      greeting = app:get("greeting"),
      limits = app:get("limits"),
    }
  end,
}
