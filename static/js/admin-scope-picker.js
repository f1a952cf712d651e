/* Wagtail admin, training form: choose the scope on the organisation tree.

   The chosen organisations' codes go into the hidden textarea the form checks on the server.
   Children are fetched when a node is opened; a search finds a node by name; the number of
   people the scope covers (with the status, position, domain and category ticks of the form)
   is asked of the server whenever any of them changes. Texts come from the server (JSON) or
   the page, so the script holds no words of its own. */
(function () {
  "use strict";

  function init(root) {
    var field = root.querySelector("textarea");
    var form = root.closest("form");
    var chips = root.querySelector("[data-chips]");
    var empty = root.querySelector("[data-empty]");
    var tree = root.querySelector("[data-tree]");
    var search = root.querySelector("[data-search]");
    var results = root.querySelector("[data-results]");
    var count = root.querySelector("[data-scope-count]");
    var error = root.querySelector("[data-scope-error]");
    var selected = new Map();

    Array.prototype.forEach.call(chips.querySelectorAll("li"), function (li) {
      selected.set(li.dataset.code, li.querySelector("span").textContent);
    });

    function getJSON(url) {
      return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) {
          if (!r.ok) throw new Error(r.status);
          return r.json();
        });
    }

    function sync() {
      field.value = Array.from(selected.keys()).join("\n");
      chips.textContent = "";
      selected.forEach(function (name, code) {
        var li = document.createElement("li");
        li.dataset.code = code;
        var span = document.createElement("span");
        span.textContent = name;
        var button = document.createElement("button");
        button.type = "button";
        button.className = "button button-small button-secondary";
        button.dataset.remove = code;
        button.textContent = "×";
        button.setAttribute("aria-label", name + " ×");
        li.appendChild(span);
        li.appendChild(document.createTextNode(" "));
        li.appendChild(button);
        chips.appendChild(li);
      });
      empty.hidden = selected.size > 0;
      Array.prototype.forEach.call(root.querySelectorAll("input[data-org-code]"), function (box) {
        box.checked = selected.has(box.dataset.orgCode);
      });
      refreshCount();
    }

    function toggle(code, name, on) {
      if (on) selected.set(code, name);
      else selected.delete(code);
      sync();
    }

    // A node's checkbox with its name and detail, on the tree or among the search results.
    function choice(node) {
      var label = document.createElement("label");
      var box = document.createElement("input");
      box.type = "checkbox";
      box.dataset.orgCode = node.code;
      box.checked = selected.has(node.code);
      box.addEventListener("change", function () { toggle(node.code, node.name, box.checked); });
      var text = document.createElement("span");
      text.textContent = node.name;
      var detail = document.createElement("span");
      detail.className = "scope-picker__detail";
      detail.textContent = node.detail;
      label.appendChild(box);
      label.appendChild(text);
      label.appendChild(detail);
      return label;
    }

    function nodeItem(node) {
      var li = document.createElement("li");
      li.setAttribute("role", "treeitem");
      li.className = "scope-picker__node";
      var row = document.createElement("div");
      row.className = "scope-picker__row";
      var opener = document.createElement("button");
      opener.type = "button";
      opener.className = "scope-picker__opener";
      if (node.has_children) {
        opener.textContent = "+";
        opener.setAttribute("aria-expanded", "false");
        opener.setAttribute("aria-label", node.open_label);
      } else {
        opener.disabled = true;
        opener.textContent = "·";
        opener.setAttribute("aria-hidden", "true");
      }
      row.appendChild(opener);
      row.appendChild(choice(node));
      li.appendChild(row);
      if (node.has_children) {
        var group = document.createElement("ul");
        group.setAttribute("role", "group");
        group.hidden = true;
        li.appendChild(group);
        opener.addEventListener("click", function () {
          var open = opener.getAttribute("aria-expanded") === "true";
          if (!open && !group.dataset.loaded) {
            group.dataset.loaded = "1";
            load(group, node.id);
          }
          group.hidden = open;
          opener.setAttribute("aria-expanded", open ? "false" : "true");
          opener.textContent = open ? "+" : "−";
        });
      }
      return li;
    }

    function load(list, parentId) {
      var url = root.dataset.childrenUrl + (parentId ? "?parent=" + encodeURIComponent(parentId) : "");
      return getJSON(url)
        .then(function (data) {
          data.nodes.forEach(function (node) { list.appendChild(nodeItem(node)); });
        })
        .catch(function () { error.hidden = false; });
    }

    var searchTimer = null;
    search.addEventListener("input", function () {
      clearTimeout(searchTimer);
      searchTimer = setTimeout(function () {
        var q = search.value.trim();
        results.textContent = "";
        if (!q) return;
        getJSON(root.dataset.searchUrl + "?q=" + encodeURIComponent(q)).then(function (data) {
          results.textContent = "";
          data.nodes.forEach(function (node) {
            var li = document.createElement("li");
            li.appendChild(choice(node));
            results.appendChild(li);
          });
          if (!data.nodes.length) {
            var none = document.createElement("li");
            none.textContent = data.none;
            results.appendChild(none);
          }
        });
      }, 250);
    });

    chips.addEventListener("click", function (event) {
      var code = event.target.dataset && event.target.dataset.remove;
      if (code) toggle(code, "", false);
    });

    var countTimer = null;
    var asked = 0;
    function refreshCount() {
      clearTimeout(countTimer);
      countTimer = setTimeout(function () {
        var params = new URLSearchParams(new FormData(form));
        params.delete("csrfmiddlewaretoken");
        var ticket = ++asked;
        getJSON(root.dataset.countUrl + "?" + params.toString())
          .then(function (data) {
            if (ticket !== asked) return;
            count.textContent = data.text;
            count.dataset.count = data.count === null ? "" : String(data.count);
          })
          .catch(function () {});
      }, 300);
    }

    var criteria = (root.dataset.criteria || "").split(" ");
    form.addEventListener("change", function (event) {
      if (criteria.indexOf(event.target.name) >= 0) refreshCount();
    });
    form.addEventListener("input", function (event) {
      if (event.target.name === "new_in_position_months") refreshCount();
    });

    load(tree.appendChild(document.createElement("ul")), null);
    refreshCount();
  }

  function start() {
    document.querySelectorAll("[data-scope-picker]").forEach(init);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
