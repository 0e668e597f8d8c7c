import{c as o,u as a,i as s,a as l,b as t,d as i,e as n,f as $,g as e}from"./echarts-_B--nE8e.js";a([s,l,t,i,n,$,e]);export{o as echarts};
