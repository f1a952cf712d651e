/* Wagtail admin, media upload: name the video after its file until someone types a title.
   (wagtailmedia's inline script, moved here for the Content-Security-Policy.) */
(function () {
  "use strict";
  var fileWidget = document.getElementById("id_file");
  var titleWidget = document.getElementById("id_title");
  if (!fileWidget || !titleWidget) return;
  fileWidget.addEventListener("change", function () {
    if (titleWidget.value === "") {
      // The file widget's value looks like `C:\fakepath\media.mp4`.
      var parts = fileWidget.value.split("\\");
      titleWidget.value = parts[parts.length - 1].replace(/\.[^.]+$/, "");
    }
  });
})();
