// sagakit dashboard: token handling, operator actions, and refreshing pages while sagas run.
// No framework and no build step; every value shown comes from server-rendered, escaped HTML.
"use strict";

(function () {
  const TOKEN_KEY = "sagakit.token";
  const body = document.body;
  const root = body.dataset.root || "";

  function token() {
    return sessionStorage.getItem(TOKEN_KEY) || "";
  }

  function setToken(value) {
    if (value) {
      sessionStorage.setItem(TOKEN_KEY, value);
      // Reads may need the token too; a cookie lets plain page loads carry it.
      // The server never accepts the cookie for a change, so forms on other sites cannot act.
      document.cookie = "sagakit_token=" + encodeURIComponent(value) + "; path=/; SameSite=Strict";
    } else {
      sessionStorage.removeItem(TOKEN_KEY);
      document.cookie = "sagakit_token=; path=/; SameSite=Strict; max-age=0";
    }
  }

  function dialogOpen() {
    return document.querySelector("dialog[open]") !== null;
  }

  // -- the Token button in the header -------------------------------------------------------
  const tokenDialog = document.getElementById("token-dialog");
  const tokenInput = document.getElementById("token-input");
  document.getElementById("token-button").addEventListener("click", function () {
    tokenInput.value = token();
    tokenDialog.showModal();
  });
  document.getElementById("token-form").addEventListener("submit", function () {
    setToken(tokenInput.value.trim());
  });
  document.getElementById("token-forget").addEventListener("click", function () {
    setToken("");
    tokenDialog.close();
  });

  // -- operator actions on a saga page ------------------------------------------------------
  const sagaId = body.dataset.sagaId;
  const actionDialog = document.getElementById("action-dialog");
  const HELP = {
    retry: "Resume a FAILED saga's rollback, or run a step waiting on its retry timer now.",
    compensate: "Roll back every completed step now.",
    cancel: "Stop going forward and roll back what was done (reason: cancelled).",
    pause: "Hold the saga; no worker advances it until it is resumed.",
    resume: "Hand the paused saga back to the workers, in the direction it was going.",
  };
  let pending = null;

  function sagaUrl(suffix) {
    return root + "/api/sagas/" + encodeURIComponent(sagaId) + (suffix || "");
  }

  if (sagaId !== undefined && actionDialog) {
    const title = document.getElementById("action-title");
    const help = document.getElementById("action-help");
    const reason = document.getElementById("action-reason");
    const tokenField = document.getElementById("action-token");
    const error = document.getElementById("action-error");
    const confirm = document.getElementById("action-confirm");

    document.querySelectorAll("button[data-action]").forEach(function (button) {
      button.addEventListener("click", function () {
        pending = button.dataset.action;
        title.textContent = pending.charAt(0).toUpperCase() + pending.slice(1) + " saga " + sagaId + "?";
        help.textContent = HELP[pending] || "";
        reason.value = "";
        tokenField.value = token();
        error.hidden = true;
        confirm.disabled = false;
        actionDialog.showModal();
      });
    });
    document.getElementById("action-cancel").addEventListener("click", function () {
      actionDialog.close();
    });
    document.getElementById("action-form").addEventListener("submit", async function (event) {
      event.preventDefault();
      const chosen = tokenField.value.trim();
      confirm.disabled = true;
      error.hidden = true;
      try {
        const response = await fetch(sagaUrl("/" + pending), {
          method: "POST",
          headers: {"Content-Type": "application/json", "Authorization": "Bearer " + chosen},
          body: JSON.stringify({reason: reason.value || null}),
        });
        if (response.ok) {
          setToken(chosen);
          actionDialog.close();
          window.location.reload();
          return;
        }
        const problem = await response.json().catch(function () { return {}; });
        const detail = typeof problem.detail === "string" ? problem.detail
          : (problem.detail || []).map(function (d) { return d.msg; }).join("; ");
        error.textContent = response.status + ": " + (detail || response.statusText);
      } catch (e) {
        error.textContent = "request failed: " + e;
      }
      error.hidden = false;
      confirm.disabled = false;
    });
  }

  // -- refreshing while sagas run -----------------------------------------------------------
  if (!body.dataset.live) {
    return;
  }
  if (sagaId !== undefined) {
    // A saga page asks for the saga's version and reloads only when it changed.
    const version = body.dataset.version;
    const poll = async function () {
      if (!dialogOpen()) {
        try {
          const headers = token() ? {"Authorization": "Bearer " + token()} : {};
          const response = await fetch(sagaUrl(""), {headers: headers});
          if (response.ok) {
            const saga = await response.json();
            if (String(saga.version) !== version) {
              window.location.reload();
              return;
            }
          }
        } catch (e) {
          // the server is restarting; try again on the next tick
        }
      }
      window.setTimeout(poll, 1000);
    };
    window.setTimeout(poll, 1000);
  } else {
    window.setInterval(function () {
      const typing = document.activeElement && ["INPUT", "SELECT"].includes(document.activeElement.tagName);
      if (!dialogOpen() && !typing) {
        window.location.reload();
      }
    }, 5000);
  }
})();
