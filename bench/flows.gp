# `make bench`: a push's orders per second against the calls in flight (bench/flows.lua).
#   gnuplot -e "datafile='flows.dat'; outfile='flows.png'" bench/flows.gp
if (!exists("datafile")) datafile = "build/bench/flows.dat"
if (!exists("outfile")) outfile = "build/bench/flows.png"
set terminal pngcairo size 900,540 noenhanced font "DejaVu Sans,11"
set output outfile
set title "push_orders, 3,000 orders in calls of 100, the emulator holding each call 200 ms"
set xlabel "calls in flight (concurrency)"
set ylabel "orders per second"
set logscale x 2
set xtics (1, 2, 4, 8, 16, 30)
set xrange [0.85:36]
set yrange [0:*]
set grid
set key bottom right
plot datafile using 1:3 with linespoints lw 2 pt 7 title "bound: min(N x 100 / time of a call, the emulator's own rate)", \
     datafile using 1:2 with linespoints lw 2 pt 5 title "wdt client:push_orders{concurrency = N}"
