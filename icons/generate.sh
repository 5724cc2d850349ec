#!/bin/sh
# Regenerates the default app icons (ImageMagick 6). Run from anywhere.
set -e
cd "$(dirname "$0")"
# Original app icon: rounded teal square with a white handset made of a quarter ring
# (a stroked circle masked to one quadrant) and two round-capped pads.
convert -size 512x512 xc:none \
  -fill '#0d9488' -draw 'roundrectangle 24,24 487,487 104,104' \
  \( -size 512x512 xc:none -fill none -stroke white -strokewidth 56 -draw 'circle 330,330 495,330' \
     \( -size 512x512 xc:none -fill white -draw 'rectangle 0,0 330,330' \) -compose DstIn -composite \) \
  -compose Over -composite \
  -fill white -stroke none -draw 'circle 330,165 330,193' \
  -fill none -stroke white -strokewidth 84 \
  -draw 'stroke-linecap round line 146,322 214,394' \
  -draw 'stroke-linecap round line 322,146 394,214' \
  PNG32:icon.png
convert icon.png -resize 32x32 PNG32:32x32.png
convert icon.png -resize 128x128 PNG32:128x128.png
convert icon.png -resize 256x256 PNG32:128x128@2x.png
